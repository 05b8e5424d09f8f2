"""What a sweep is: a base config, fixed settings and a grid, expanded into named points.

The grid is the Cartesian product of its axes, in the order given: `--grid model.activation=tanh,relu
--grid train.l2=0,1e-3` makes 4 points, (tanh, 0), (tanh, 0.001), (relu, 0), (relu, 0.001). An axis
is any dotted config field, or `preset` (the base config itself varies). Every value goes through
RunConfig.with_overrides, so a wrong field or type is a ConfigError before anything runs.

A point's directory is named after what differs: `activation=relu,l2=0.001` (the field's last
part, or the whole dotted path when two axes share it; a `preset` axis gives just the preset's name,
so `ibtui reproduce saxe` writes SWEEP/tanh and SWEEP/relu). SWEEP/sweep.toml records the spec, so
the same command on the same directory resumes that sweep and refuses another one.
"""

from __future__ import annotations

import itertools
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from ibtui.config import RunConfig
from ibtui.errors import ConfigError, StoreError

SPEC_FILE = "sweep.toml"
SPEC_FORMAT = 1
PRESET_AXIS = "preset"
DEFAULT_PRESET = "tanh"


@dataclass(frozen=True)
class Point:
    name: str  # the run directory's name inside the sweep
    values: tuple[tuple[str, Any], ...]  # (axis, value) in axis order
    config: RunConfig


@dataclass(frozen=True)
class SweepSpec:
    preset: str = DEFAULT_PRESET
    grid: tuple[tuple[str, tuple[Any, ...]], ...] = ()  # (axis, values) in order
    settings: tuple[tuple[str, Any], ...] = ()  # fixed overrides for every point ("train.epochs", 100)
    paper: str | None = None  # set by `ibtui reproduce`: REPORT.md judges the paper's claims

    def to_doc(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"sweep_format": SPEC_FORMAT, "preset": self.preset}
        if self.paper:
            doc["paper"] = self.paper
        doc["set"] = {k: _toml_value(v) for k, v in self.settings}
        doc["grid"] = {k: [_toml_value(v) for v in values] for k, values in self.grid}
        return doc

    def to_toml(self) -> str:
        return tomli_w.dumps(self.to_doc())

    def points(self) -> list[Point]:
        """Every point's config, checked; ConfigError (naming the axis and value) for a bad one."""
        if not self.grid:
            raise ConfigError("the grid is empty: give at least one --grid FIELD=V1,V2 (or a [grid] table in the spec)")
        for axis, values in self.grid:
            if not values:
                raise ConfigError(f"the grid axis {axis} has no values")
        axes = [axis for axis, _ in self.grid]
        if len(set(axes)) != len(axes):
            raise ConfigError("the grid names an axis twice")
        labels = _labels(axes)
        settings = dict(self.settings)
        points = []
        bases: dict[str, RunConfig] = {}
        for combo in itertools.product(*(values for _, values in self.grid)):
            pairs = tuple(zip(axes, combo))
            preset = next((str(v) for a, v in pairs if a == PRESET_AXIS), self.preset)
            if preset not in bases:
                from ibtui.runs.presets import load_preset

                bases[preset] = load_preset(preset)
            name = ",".join(_name_part(labels[a], v) for a, v in pairs)
            overrides = {**settings, **{a: v for a, v in pairs if a != PRESET_AXIS}}
            try:
                config = bases[preset].with_overrides(overrides)
            except ConfigError as exc:
                raise ConfigError(f"the sweep point {name}: {exc}") from None
            points.append(Point(name, pairs, config.with_overrides({"name": name})))
        names = [p.name for p in points]
        if len(set(names)) != len(names):
            raise ConfigError("two grid points would get the same directory name (a value is repeated)")
        return points


def _toml_value(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _labels(axes: list[str]) -> dict[str, str]:
    """The short name of each axis in directory names: the last dotted part, unless it is shared."""
    last = [a.rpartition(".")[2] for a in axes]
    return {a: (short if last.count(short) == 1 else a) for a, short in zip(axes, last)}


def format_value(value: Any) -> str:
    """A value as it appears in a directory name: 0.001, relu, 10-7-5, true."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "-".join(format_value(v) for v in value)
    return str(value).replace("/", "_").replace(",", "_")


def _name_part(label: str, value: Any) -> str:
    return format_value(value) if label == PRESET_AXIS else f"{label}={format_value(value)}"


# -- parsing ---------------------------------------------------------------------------------------


def parse_value(text: str) -> Any:
    """One value as TOML would read it (0, 1e-3, true, [10, 7]), else the text itself (tanh)."""
    text = text.strip()
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def split_values(text: str) -> list[str]:
    """Split on commas outside brackets, so `[10,7],[6,4]` is two values."""
    parts, depth, current = [], 0, ""
    for char in text:
        if char in "[(":
            depth += 1
        elif char in "])":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [p.strip() for p in parts if p.strip()]


def parse_grid_option(option: str) -> tuple[str, tuple[Any, ...]]:
    """'model.activation=tanh,relu' -> ('model.activation', ('tanh', 'relu'))."""
    key, sep, text = option.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"'{option}' is not FIELD=V1,V2,... (for example --grid model.activation=tanh,relu)")
    values = tuple(parse_value(v) for v in split_values(text))
    if not values:
        raise ConfigError(f"the grid axis {key} has no values (give --grid {key}=V1,V2,...)")
    return key, values


def parse_settings(items: list[str] | None) -> dict[str, Any]:
    """--set KEY=VALUE options as a dict."""
    out: dict[str, Any] = {}
    for item in items or ():
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"'{item}' is not KEY=VALUE (for example train.epochs=100)")
        out[key.strip()] = parse_value(text)
    return out


def spec_from_doc(doc: dict[str, Any], source: str) -> SweepSpec:
    known = {"sweep_format", "preset", "paper", "set", "grid", "seeds", "epochs"}
    unknown = sorted(set(doc) - known)
    if unknown:
        raise ConfigError(f"{source}: unknown key '{unknown[0]}' (known: {', '.join(sorted(known))})")
    if doc.get("sweep_format", SPEC_FORMAT) != SPEC_FORMAT:
        raise ConfigError(f"{source} has sweep_format {doc['sweep_format']}, this ibtui reads {SPEC_FORMAT}")
    grid = doc.get("grid", {})
    settings = doc.get("set", {})
    if not isinstance(grid, dict) or not isinstance(settings, dict):
        raise ConfigError(f"{source}: [grid] and [set] must be tables")
    axes = []
    for key, values in grid.items():
        if not isinstance(values, list):
            values = [values]
        axes.append((key, tuple(tuple(v) if isinstance(v, list) else v for v in values)))
    settings = dict(settings)
    if "seeds" in doc:
        settings["train.seeds"] = doc["seeds"]
    if "epochs" in doc:
        settings["train.epochs"] = doc["epochs"]
    preset = doc.get("preset", DEFAULT_PRESET)
    if not isinstance(preset, str):
        raise ConfigError(f"{source}: preset must be a preset name or a .toml path")
    return SweepSpec(preset=preset, grid=tuple(axes), settings=tuple(sorted(settings.items())), paper=doc.get("paper"))


def load_spec_file(path: str | Path) -> SweepSpec:
    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"the sweep spec {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the sweep spec {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    return spec_from_doc(doc, str(path))


def build_spec(*, preset: str | None = None, spec_file: str | Path | None = None, grid: list[str] | None = None,
               settings: dict[str, Any] | None = None, paper: str | None = None) -> SweepSpec:
    """The command line's sweep: a spec file (if any) with --preset, --grid and --set on top."""
    base = load_spec_file(spec_file) if spec_file else SweepSpec()
    axes = dict(base.grid)
    for option in grid or ():
        key, values = parse_grid_option(option)
        axes[key] = values
    merged = {**dict(base.settings), **{k: v for k, v in (settings or {}).items() if v is not None}}
    return SweepSpec(preset=preset or base.preset, grid=tuple(axes.items()), settings=tuple(sorted(merged.items())),
                     paper=paper or base.paper)


# -- the sweep directory ---------------------------------------------------------------------------


def is_sweep_dir(path: str | Path) -> bool:
    try:
        return (Path(path) / SPEC_FILE).is_file()
    except OSError:  # a name too long, a permission: not a sweep; the run reader says what is wrong
        return False


def read_sweep(path: str | Path) -> SweepSpec:
    path = Path(path)
    if not is_sweep_dir(path):
        raise StoreError(f"{path} is not a sweep directory (it has no {SPEC_FILE})")
    try:
        return load_spec_file(path / SPEC_FILE)
    except ConfigError as exc:
        raise StoreError(f"{path} holds a sweep this ibtui cannot read: {exc}") from None


def check_sweep_dir(path: str | Path, spec: SweepSpec) -> bool:
    """Whether `path` can hold this sweep, writing nothing; True when it already does (resume).

    Refuses (StoreError) a file, a run directory, a folder holding other things, and a sweep
    directory recorded with another spec.
    """
    from ibtui.runs.files import CONFIG_FILE

    path = Path(path)
    if path.exists() and not path.is_dir():
        raise StoreError(f"{path} exists and is not a directory")
    if path.is_dir() and is_sweep_dir(path):
        recorded = read_sweep(path)
        if recorded.to_doc() != spec.to_doc():
            raise StoreError(f"{path} holds another sweep (see its {SPEC_FILE}); choose another --out")
        return True
    if path.is_dir() and (path / CONFIG_FILE).exists():
        raise StoreError(f"{path} holds a run, not a sweep; choose another --out")
    if path.is_dir() and any(path.iterdir()):
        raise StoreError(f"{path} is not empty and holds no sweep; choose an empty or new directory for --out")
    return False


def claim_sweep_dir(path: str | Path, spec: SweepSpec) -> bool:
    """check_sweep_dir, then write sweep.toml into a new sweep directory. True when resuming."""
    from ibtui.runs.files import write_atomic

    path = Path(path)
    if check_sweep_dir(path, spec):
        return True
    try:
        path.mkdir(parents=True, exist_ok=True)
        write_atomic(path / SPEC_FILE, spec.to_toml().encode())
    except OSError as exc:
        raise StoreError(f"cannot write the sweep directory {path}: {exc.strerror or exc}") from None
    return False
