"""The command palette's preset commands: "preset: tanh" loads that preset into the form."""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

from ibtui.runs.presets import preset_paths


class PresetCommands(Provider):
    def _commands(self):
        for name in preset_paths():
            yield f"preset: {name}", partial(self.app.load_preset, name), f"Load the {name} preset into the form"  # type: ignore[attr-defined]

    async def discover(self) -> Hits:
        for title, callback, help_text in self._commands():
            yield DiscoveryHit(title, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, callback, help_text in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, help=help_text)
