"""The settings form <-> RunConfig: what each field shows, and the config the fields make.

The form never validates combinations itself: config_from_fields turns the fields into dotted
overrides and applies them with RunConfig.with_overrides, the validator the CLI and the presets
use, and model.factory goes through config.absolute_factory as `--model` does. Each Input also has
a Textual validator for what can be checked alone (a number, a range), so a bad field turns red
as it is typed. with_overrides skips None, so a field emptied to "none" (the CSV path and columns,
the model file, the data folder) is set to None on the base config first.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from textual.validation import Function, Validator

from ibtui.config import ESTIMATORS, RunConfig, absolute_factory
from ibtui.errors import ConfigError

CSV_DATASETS = ("pokemon", "csv")  # the datasets that read a CSV (optional for pokemon)
IDX_DATASETS = ("mnist", "fashion-mnist")  # the datasets read from a folder of IDX files


def rows_shown(dataset: object) -> dict[str, bool]:
    """Which dataset-dependent rows the form shows for `dataset`."""
    return {
        "csv-row": dataset in CSV_DATASETS,
        "label-row": dataset == "csv",
        "features-row": dataset == "csv",
        "data-dir-row": dataset in IDX_DATASETS,
    }


# -- parsing -------------------------------------------------------------------------------------


def parse_int(text: str) -> int:
    return int(text.strip().replace("_", "").replace(",", ""))


def parse_float(text: str) -> float:
    value = float(text.strip())
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(text)
    return value


def parse_optional_float(text: str) -> float:
    """An empty field is 0 (no L2, no dropout, no momentum, no label noise)."""
    return parse_float(text) if text.strip() else 0.0


def parse_optional_int(text: str) -> int | None:
    """An empty field is None (the preset's schedule)."""
    return parse_int(text) if text.strip() else None


def parse_widths(text: str) -> tuple[int, ...]:
    widths = tuple(int(part) for part in text.replace(" ", "").split(",") if part)
    if not widths:
        raise ValueError(text)
    return widths


def parse_estimators(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def parse_columns(text: str) -> tuple[str, ...] | None:
    """Comma-separated column names; empty means None (every numeric column)."""
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    return names or None


# -- per-field validators (what one field can say alone) -----------------------------------------


def parses_to(parse: Callable[[str], Any], test: Callable[[Any], bool] = lambda v: True) -> Callable[[str], bool]:
    """A check for Textual's Function validator: the text parses, and the value passes test."""
    def ok(text: str) -> bool:
        try:
            return bool(test(parse(text)))
        except ValueError:
            return False

    return ok


def int_at_least(minimum: int, what: str = "a whole number") -> Validator:
    return Function(parses_to(parse_int, lambda v: v >= minimum), f"must be {what} >= {minimum}")


def positive_float() -> Validator:
    return Function(parses_to(parse_float, lambda v: v > 0), "must be a number > 0 (e.g. 1e-3)")


def a_number(what: str) -> Validator:
    """Only "is it a number": the range and the combinations are config.validate's to say."""
    return Function(parses_to(parse_optional_float), f"{what} must be a number")


def a_whole_number(what: str) -> Validator:
    return Function(parses_to(parse_optional_int), f"{what} must be a whole number")


def estimators_ok(text: str) -> bool:
    names = parse_estimators(text)
    return bool(names) and all(n in ESTIMATORS for n in names) and len(set(names)) == len(names)


def widths_ok(text: str) -> bool:
    return parses_to(parse_widths, lambda w: all(x >= 1 for x in w))(text)


# -- config -> fields ----------------------------------------------------------------------------


def _fmt_float(value: float) -> str:
    return f"{value:g}"


def field_values(config: RunConfig) -> dict[str, str]:
    """What each Input and Select (by id) shows for config."""
    d, m, t, i = config.data, config.model, config.train, config.info
    return {
        "dataset": d.name,
        "activation": m.activation,
        "device": t.device,
        "optimizer": t.optimizer,
        "l2-mode": t.l2_mode,
        "measure-on": i.on,
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
        "model": m.factory or "",
        "momentum": _fmt_float(t.momentum) if t.momentum else "0",
        "label-noise": _fmt_float(d.label_noise) if d.label_noise else "0",
        "snapshots": str(i.snapshots) if i.schedule == "log" else "",
        "mi-samples": str(d.mi_samples),
        "data-dir": d.data_dir or "",
    }


# -- fields -> config ----------------------------------------------------------------------------


def _clear(config: RunConfig, paths: list[str]) -> RunConfig:
    for path in paths:
        section, _, name = path.partition(".")
        config = replace(config, **{section: replace(getattr(config, section), **{name: None})})
    return config


def config_from_fields(base: RunConfig, values: Mapping[str, Any]) -> RunConfig:
    """The config the form's fields make on top of base; ConfigError (one sentence) if it cannot
    run. Call only once every field's own validator passes (values: id -> value, as field_values)."""
    text = lambda ident: str(values[ident]).strip()  # noqa: E731
    shown = rows_shown(values["dataset"])
    snapshots = parse_optional_int(text("snapshots"))
    nones = {  # empty or hidden: None, which with_overrides cannot set
        "data.csv": text("csv") if shown["csv-row"] else "",
        "data.label": text("label") if shown["label-row"] else "",
        "data.features": parse_columns(text("features")) if shown["features-row"] else None,
        "data.data_dir": str(Path(text("data-dir")).expanduser().resolve()) if shown["data-dir-row"] and text("data-dir") else "",
        "model.factory": absolute_factory(text("model")) if text("model") else "",
    }
    config = _clear(base, [path for path, value in nones.items() if not value])
    config = config.with_overrides({
        **{path: value for path, value in nones.items() if value},
        "data.name": values["dataset"],
        "model.activation": values["activation"],
        "model.hidden": parse_widths(text("hidden")),
        "train.l2": parse_optional_float(text("l2")),
        "model.dropout": parse_optional_float(text("dropout")),
        "train.epochs": parse_int(text("epochs")),
        "info.noise_variance": parse_float(text("noise")),
        "info.estimators": parse_estimators(text("estimators")),
        "train.lr": parse_float(text("lr")),
        "train.batch_size": parse_int(text("batch")),
        "train.seed": parse_int(text("seed")),
        "train.seeds": parse_int(text("seeds")),
        "train.device": values["device"],
        "train.optimizer": values["optimizer"],
        "train.momentum": parse_optional_float(text("momentum")),
        "train.l2_mode": values["l2-mode"],
        "data.label_noise": parse_optional_float(text("label-noise")),
        "info.on": values["measure-on"],
        "info.schedule": "log" if snapshots is not None else None,  # as `--snapshots N`
        "info.snapshots": snapshots,
        "data.mi_samples": parse_int(text("mi-samples")),
    })
    if config.model.factory is not None:  # checked here, as typed: the engine would refuse it at start
        path = Path(config.model.factory.rpartition(":")[0])
        if not path.is_file():
            raise ConfigError(f"the model file {path} does not exist")
    return config
