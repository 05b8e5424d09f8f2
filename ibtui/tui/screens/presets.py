"""Pick a preset: its name, dataset, network and description; enter loads it into the form."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from ibtui.errors import IbtuiError
from ibtui.runs.presets import load_preset, preset_paths


def preset_summary(name: str) -> Text:
    """One option of the picker: name, dataset, network (or model file), epochs, description."""
    text = Text()
    text.append(f"{name:<16}", style="bold")
    try:
        c = load_preset(name)
    except IbtuiError as exc:
        text.append(f"cannot be read: {exc}", style="red")
        return text
    if c.model.factory:  # the hidden widths and activation are the MLP's defaults, unused here
        net = f"model {c.model.factory_label}"
    else:
        net = "-".join(str(w) for w in c.model.hidden) + f" {c.model.activation}"
    extras = f", L2 {c.train.l2:g}" if c.train.l2 else ""
    text.append(f"{c.data.name} · {net}{extras} · {c.train.epochs:,} epochs", style="dim")
    if c.description:
        text.append(f"\n{' ' * 16}{c.description}", style="italic")
    return text


class PresetPicker(ModalScreen[str | None]):
    BINDINGS = [Binding("escape,q,p", "dismiss_none", "close")]

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static("[b]Presets[/b]  enter loads one into the form · esc closes", classes="dialog-title")
            yield OptionList(*(Option(preset_summary(name), id=name) for name in preset_paths()), id="preset-list")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
