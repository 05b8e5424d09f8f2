"""The settings form: every knob of a run, validated as it is typed.

The form never builds a RunConfig itself: it produces dotted overrides that the app applies to its
base config with RunConfig.with_overrides, so the CLI, presets and the form share one validator.
Two things with_overrides cannot express (it skips None values) are cleared by the form
through data_fields(): the CSV path, label and feature columns, which the app sets on the base
config's data section before applying the overrides.

Each Input has Textual validators for what can be checked alone (a number, a range); the rest
(combinations) is left to with_overrides, whose ConfigError the app shows under the form.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.validation import Function, Validator
from textual.widgets import Button, Input, Label, Select, Static

from ibtui.config import ACTIVATIONS, DATASETS, DEVICES, ESTIMATORS, RunConfig
from ibtui.runs.presets import preset_paths
from ibtui.tui.widgets.form_input import FormInput

CSV_DATASETS = ("pokemon", "csv")  # the datasets that read a CSV (optional for pokemon)


# -- parsing -------------------------------------------------------------------------------------


def parse_int(text: str) -> int:
    return int(text.strip().replace("_", "").replace(",", ""))


def parse_float(text: str) -> float:
    value = float(text.strip())
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(text)
    return value


def parse_widths(text: str) -> tuple[int, ...]:
    widths = tuple(int(part) for part in text.replace(" ", "").split(",") if part)
    if not widths:
        raise ValueError(text)
    return widths


def parse_estimators(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _check(parse: Callable[[str], Any], test: Callable[[Any], bool] = lambda v: True) -> Callable[[str], bool]:
    def ok(text: str) -> bool:
        try:
            return bool(test(parse(text)))
        except ValueError:
            return False

    return ok


def int_at_least(minimum: int, what: str = "a whole number") -> Validator:
    return Function(_check(parse_int, lambda v: v >= minimum), f"must be {what} >= {minimum}")


def positive_float() -> Validator:
    return Function(_check(parse_float, lambda v: v > 0), "must be a number > 0 (e.g. 1e-3)")


def parse_optional_float(text: str) -> float:
    """An empty field is 0 (no L2, no dropout)."""
    return parse_float(text) if text.strip() else 0.0


def parse_columns(text: str) -> tuple[str, ...] | None:
    """Comma-separated column names; empty means None (every numeric column)."""
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    return names or None


def _estimators_ok(text: str) -> bool:
    names = parse_estimators(text)
    return bool(names) and all(n in ESTIMATORS for n in names) and len(set(names)) == len(names)


def _fmt_float(value: float) -> str:
    return f"{value:g}"


# -- the form ------------------------------------------------------------------------------------


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

    class PresetChosen(Message):
        def __init__(self, name: str) -> None:
            super().__init__()
            self.name = name

    class StartPressed(Message):
        pass

    def __init__(self, config: RunConfig, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._initial = config
        self._filling = False
        self._expected_preset: object = None  # the value fill() set, whose Changed is not a choice

    # -- building ---------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        c = self._initial
        presets = [(name, name) for name in preset_paths()]
        inp = lambda ident, validators, tip="": FormInput(  # noqa: E731
            id=ident, validators=validators, compact=True, tooltip=tip or None
        )
        yield Field("preset", Select(presets, id="preset", prompt="(custom)", compact=True))
        yield Field("dataset", Select([(d, d) for d in DATASETS], id="dataset", allow_blank=False, compact=True, value=c.data.name))
        yield Field("data CSV", inp("csv", [], "path to the CSV: required for csv; for pokemon the Kaggle 300k.csv (empty: a synthetic stand-in)"), id="csv-row")
        yield Field("label col", inp("label", [], "the column holding the class label"), id="label-row")
        yield Field("features", inp("features", [], "feature columns, comma-separated (empty: every numeric column)"), id="features-row")
        yield Field("activation", Select([(a, a) for a in ACTIVATIONS], id="activation", allow_blank=False, compact=True, value=c.model.activation))
        yield Field("hidden", inp("hidden", [Function(_check(parse_widths, lambda w: all(x >= 1 for x in w)), "must be widths like 10,7,5,4,3")], "hidden layer widths, comma-separated"))
        yield Field(
            "L2 · drop",
            inp("l2", [Function(_check(parse_optional_float, lambda v: v >= 0), "L2 must be a number >= 0")], "L2 factor on the weights (empty or 0: none)"),
            inp("dropout", [Function(_check(parse_optional_float, lambda v: 0 <= v < 1), "dropout must be a rate in [0, 1)")], "dropout rate after each hidden layer (empty or 0: none)"),
        )
        yield Field("epochs", inp("epochs", [int_at_least(1)]))
        yield Field("noise σ²", inp("noise", [positive_float()], "KDE noise variance sigma^2"))
        yield Field("estimators", inp("estimators", [Function(_estimators_ok, f"must name estimators from {', '.join(ESTIMATORS)}")], "comma-separated: " + ", ".join(ESTIMATORS)))
        yield Field("learn rate", inp("lr", [positive_float()]))
        yield Field("batch", inp("batch", [int_at_least(0)], "minibatch size, 0 for full batch"))
        yield Field("seed × n", inp("seed", [int_at_least(0)], "first seed"), inp("seeds", [int_at_least(1)], "number of seeds, trained at once"))
        yield Field("device", Select([(d, d) for d in DEVICES], id="device", allow_blank=False, compact=True, value=c.train.device))
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
            names = set(preset_paths())
            wanted = config.name if config.name in names else Select.NULL
            if preset.value != wanted:
                self._expected_preset = wanted
                preset.value = wanted
            self.query_one("#dataset", Select).value = config.data.name
            self.query_one("#activation", Select).value = config.model.activation
            self.query_one("#device", Select).value = config.train.device
            d, m, t, i = config.data, config.model, config.train, config.info
            values = {
                "csv": d.csv or "",
                "label": d.label or "",
                "features": ", ".join(d.features) if d.features else "",
                "hidden": ",".join(str(w) for w in m.hidden),
                "l2": _fmt_float(t.l2) if t.l2 else "0",
                "dropout": _fmt_float(m.dropout) if m.dropout else "0",
                "epochs": str(t.epochs),
                "noise": _fmt_float(i.noise_variance),
                "estimators": ", ".join(i.estimators),
                "lr": _fmt_float(t.lr),
                "batch": str(t.batch_size),
                "seed": str(t.seed),
                "seeds": str(t.seeds),
            }
            for ident, value in values.items():
                self.query_one(f"#{ident}", Input).value = value
        finally:
            self._filling = False
        self._sync_dataset(config.data.name)

    def _value(self, ident: str) -> str:
        return self.query_one(f"#{ident}", Input).value

    def _sync_dataset(self, name: object = None) -> None:
        """The CSV path for pokemon and csv; the label and feature columns for csv only."""
        if name is None:
            name = self.query_one("#dataset", Select).value
        self.query_one("#csv-row").display = name in CSV_DATASETS
        self.query_one("#label-row").display = name == "csv"
        self.query_one("#features-row").display = name == "csv"
        self.query_one("#csv", Input).placeholder = "required" if name == "csv" else "empty: synthetic stand-in"
        self.query_one("#label", Input).placeholder = "required"
        self.query_one("#features", Input).placeholder = "all numeric columns"

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

    def overrides(self) -> dict[str, Any]:
        """The dotted overrides for RunConfig.with_overrides; call only when errors() is empty."""
        return {
            "data.name": self.query_one("#dataset", Select).value,
            "model.activation": self.query_one("#activation", Select).value,
            "model.hidden": parse_widths(self._value("hidden")),
            "train.l2": parse_optional_float(self._value("l2")),
            "model.dropout": parse_optional_float(self._value("dropout")),
            "train.epochs": parse_int(self._value("epochs")),
            "info.noise_variance": parse_float(self._value("noise")),
            "info.estimators": parse_estimators(self._value("estimators")),
            "train.lr": parse_float(self._value("lr")),
            "train.batch_size": parse_int(self._value("batch")),
            "train.seed": parse_int(self._value("seed")),
            "train.seeds": parse_int(self._value("seeds")),
            "train.device": self.query_one("#device", Select).value,
        }

    def data_fields(self) -> dict[str, Any]:
        """data.csv, data.label, data.features as the form has them (None where empty or hidden).

        Set directly on the base config's data section (with_overrides would skip the Nones)."""
        name = self.query_one("#dataset", Select).value
        csv = self._value("csv").strip() if name in CSV_DATASETS else ""
        label = self._value("label").strip() if name == "csv" else ""
        features = parse_columns(self._value("features")) if name == "csv" else None
        return {"csv": csv or None, "label": label or None, "features": features}

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

    def on_select_changed(self, event: Select.Changed) -> None:
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

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        if not self._filling:
            self.post_message(self.Changed())

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.post_message(self.StartPressed())

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "start":
            self.post_message(self.StartPressed())
