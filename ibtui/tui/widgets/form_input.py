"""An Input whose editing keys keep their order with typed characters, however fast they come.

Textual's Input inserts a printable character in its own key handler, but runs its bound keys
(backspace, delete, end, arrows...) only after the key event has bubbled up through every
ancestor back to the App. In a burst of keys (tmux send-keys, a fast typist on a slow link, a
paste of keystrokes) the next characters are inserted while a backspace is still on its way:
"End, 6 x backspace, 2000" left "" or "12" in the epochs field. Here the Input's own bindings run
inline, in the order the keys arrived (upstream: Textualize/textual#6605, PR #6631).
"""

from __future__ import annotations

from textual import events
from textual.widgets import Input


class FormInput(Input):
    async def _on_key(self, event: events.Key) -> None:
        if not event.is_printable:
            for binding in self._bindings.key_to_bindings.get(event.key, ()):
                # Priority bindings were checked by the App before the key reached this widget.
                if not binding.priority and await self.app.run_action(binding.action, self):
                    event.stop()
                    event.prevent_default()  # Input._on_key (and the App's bindings) must not see it again
                    return
        await super()._on_key(event)
