"""The settings form: every knob of a run, the rarer ones in a fold ("more"), validated as typed.

What each field shows and the RunConfig the fields make live in ibtui.tui.form_config (one
mapping, shared validation); this widget only lays the fields out, shows which rows apply to the
dataset, and tells the app when something changed (SettingsForm.Changed), when Start was asked
for, and when a preset was chosen.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.validation import Function
from textual.widgets import Button, Collapsible, Input, Label, Select, Static

from ibtui.config import ACTIVATIONS, DATASETS, DEVICES, ESTIMATORS, L2_MODES, MI_SETS, OPTIMIZERS, RunConfig
from ibtui.runs.presets import preset_paths
from ibtui.tui import form_config as fc
from ibtui.tui.widgets.form_input import FormInput

SELECTS = {  # id -> choices
    "dataset": DATASETS,
    "activation": ACTIVATIONS,
    "device": DEVICES,
    "optimizer": OPTIMIZERS,
    "l2-mode": L2_MODES,
    "measure-on": MI_SETS,
}


class Field(Horizontal):
    """One row: a label and its control(s)."""

    def __init__(self, label: str, *controls, tooltip: str | None = None, id: str | None = None) -> None:
        super().__init__(classes="field", id=id)
        self._label = label
        self._controls = controls
        self._tooltip = tooltip

    def compose(self) -> ComposeResult:
        label = Label(self._label, classes="field-label")
        if self._tooltip:
            label.tooltip = self._tooltip
        yield label
        yield from self._controls


class SettingsForm(VerticalScroll):
    """The run's settings; posts SettingsForm.Changed on every edit and Start on the button."""

    BORDER_TITLE = "Settings"

    class Changed(Message):
        """A field changed: the app re-validates and enables or disables Start."""

    @dataclass
    class PresetChosen(Message):
        name: str

    class StartPressed(Message):
        pass

    def __init__(self, config: RunConfig, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._initial = config
        self._filling = False
        self._expected_preset: object = None  # the value fill() set, whose Changed is not a choice

    # -- building ---------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        c = fc.field_values(self._initial)
        presets = [(name, name) for name in preset_paths()]
        inp = lambda ident, validators, tip="": FormInput(  # noqa: E731
            id=ident, validators=validators, compact=True, tooltip=tip or None
        )
        sel = lambda ident: Select([(v, v) for v in SELECTS[ident]], id=ident, allow_blank=False, compact=True, value=c[ident])  # noqa: E731
        yield Field("preset", Select(presets, id="preset", prompt="(custom)", compact=True))
        yield Field("dataset", sel("dataset"))
        yield Field("data CSV", inp("csv", [], "path to the CSV: required for csv; for pokemon the Kaggle 300k.csv (empty: a synthetic stand-in)"), id="csv-row")
        yield Field("label col", inp("label", [], "the column holding the class label"), id="label-row")
        yield Field("features", inp("features", [], "feature columns, comma-separated (empty: every numeric column)"), id="features-row")
        yield Field("data dir", inp("data-dir", [], "the folder of the IDX files (empty: the download cache)"), id="data-dir-row")
        yield Field("activation", sel("activation"))
        yield Field("hidden", inp("hidden", [Function(fc.widths_ok, "must be widths like 10,7,5,4,3")], "hidden layer widths, comma-separated"))
        yield Field(
            "L2 · drop",
            inp("l2", [Function(fc.parses_to(fc.parse_optional_float, lambda v: v >= 0), "L2 must be a number >= 0")], "L2 factor on the weights (empty or 0: none)"),
            inp("dropout", [Function(fc.parses_to(fc.parse_optional_float, lambda v: 0 <= v < 1), "dropout must be a rate in [0, 1)")], "dropout rate after each hidden layer (empty or 0: none)"),
        )
        yield Field("epochs", inp("epochs", [fc.int_at_least(1)]))
        yield Field("noise σ²", inp("noise", [fc.positive_float()], "KDE noise variance sigma^2"))
        yield Field("estimators", inp("estimators", [Function(fc.estimators_ok, f"must name estimators from {', '.join(ESTIMATORS)}")], "comma-separated: " + ", ".join(ESTIMATORS)))
        yield Field("learn rate", inp("lr", [fc.positive_float()]))
        yield Field("batch", inp("batch", [fc.int_at_least(0)], "minibatch size, 0 for full batch"))
        yield Field("seed × n", inp("seed", [fc.int_at_least(0)], "first seed"), inp("seeds", [fc.int_at_least(1)], "number of seeds, trained at once"))
        yield Field("device", sel("device"))
        with Collapsible(title="more: model, optimizer, noise…", id="advanced"):
            yield Field("model file", inp("model", [], "your own network, FILE.py:FUNCTION: make_model(input_shape, n_classes) -> nn.Module (empty: the built-in MLP)"))
            yield Field("optimizer", sel("optimizer"), inp("momentum", [fc.a_number("momentum")], "SGD momentum (0: none)"))
            yield Field("L2 mode", sel("l2-mode"), tooltip="loss: loss += l2 sum W^2; weight_decay: W <- (1 - lr l2) W (model files only)")
            yield Field("lab. noise", inp("label-noise", [fc.a_number("label noise")], "fraction of training labels replaced at random (1: the random-label control)"))
            yield Field("MI on", sel("measure-on"), tooltip="the samples the information plane is measured on")
            yield Field("snapshots", inp("snapshots", [fc.a_whole_number("snapshots")], "N log-spaced snapshot epochs (empty: the preset's schedule)"))
            yield Field("MI samples", inp("mi-samples", [fc.a_whole_number("MI samples")], "measure MI on a stratified subset of at most N samples"))
        yield Static("", id="form-error")
        yield Button("Start  [s]", id="start", variant="success", compact=True)

    def on_mount(self) -> None:
        self.fill(self._initial)

    # -- reading and writing ----------------------------------------------------------------------

    def fill(self, config: RunConfig) -> None:
        """Show config in every field (a preset was chosen, or the CLI's options)."""
        self._filling = True
        try:
            preset = self.query_one("#preset", Select)
            wanted = config.name if config.name in set(preset_paths()) else Select.NULL
            if preset.value != wanted:
                self._expected_preset = wanted
                preset.value = wanted
            for ident, value in fc.field_values(config).items():
                widget = self.query_one(f"#{ident}")
                widget.value = value
        finally:
            self._filling = False
        self._sync_dataset(config.data.name)

    def values(self) -> dict[str, Any]:
        """Every field's value by id (Inputs' text, Selects' choice): form_config's input."""
        return {w.id: w.value for w in self.query("Input, Select") if w.id != "preset"}

    def config(self, base: RunConfig) -> RunConfig:
        """The config the fields make on top of base (ConfigError if it cannot run); call only
        when errors() is empty."""
        return fc.config_from_fields(base, self.values())

    def _sync_dataset(self, name: object = None) -> None:
        """Show the rows that apply to the dataset (the CSV path, its columns, the IDX folder)."""
        if name is None:
            name = self.query_one("#dataset", Select).value
        for row, shown in fc.rows_shown(name).items():
            self.query_one(f"#{row}").display = shown
        self.query_one("#csv", Input).placeholder = "required" if name == "csv" else "empty: synthetic stand-in"
        self.query_one("#label", Input).placeholder = "required"
        self.query_one("#features", Input).placeholder = "all numeric columns"
        self.query_one("#data-dir", Input).placeholder = "empty: download cache"
        self.query_one("#model", Input).placeholder = "empty: the MLP"
        self.query_one("#snapshots", Input).placeholder = "preset's schedule"

    def errors(self) -> list[str]:
        """One line per field that does not validate, in form order."""
        problems = []
        for field in self.query(Field):
            if not field.display:
                continue
            for control in field.query(Input):
                if control.disabled:
                    continue
                result = control.validate(control.value)
                if result is not None and not result.is_valid:
                    problems.append(f"{field._label}: {result.failure_descriptions[0]}")
        return problems

    def reveal_problems(self) -> None:
        """Unfold the form, and the "more" fold when a field in it is invalid."""
        self.remove_class("-collapsed")
        advanced = self.query_one("#advanced", Collapsible)
        if any(i.has_class("-invalid") for i in advanced.query(Input)):
            advanced.collapsed = False

    def show_error(self, message: str) -> None:
        error = self.query_one("#form-error", Static)
        error.update(message)
        error.set_class(bool(message), "-shown")

    def set_startable(self, startable: bool) -> None:
        self.query_one("#start", Button).disabled = not startable

    def set_locked(self, locked: bool) -> None:
        """While a run trains, the form is read-only (it describes the run on screen)."""
        for widget in self.query("Input, Select"):
            widget.disabled = locked

    # -- events -----------------------------------------------------------------------------------

    @on(Select.Changed)
    def _select_changed(self, event: Select.Changed) -> None:
        event.stop()
        if self._filling:
            return
        if event.select.id == "preset":
            if event.value == self._expected_preset:
                self._expected_preset = None
                return
            if event.value is not Select.NULL:
                self.post_message(self.PresetChosen(str(event.value)))
            return
        if event.select.id == "dataset":
            self._sync_dataset(event.value)
        self.post_message(self.Changed())

    @on(Input.Changed)
    def _input_changed(self, event: Input.Changed) -> None:
        event.stop()
        if not self._filling:
            self.post_message(self.Changed())

    @on(Input.Submitted)
    @on(Button.Pressed, "#start")
    def _start(self, event: Input.Submitted | Button.Pressed) -> None:
        event.stop()
        self.post_message(self.StartPressed())
