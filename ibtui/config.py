"""The configuration of a run: frozen dataclasses, validation, and TOML in and out.

A RunConfig is complete: config.toml in a run directory is exactly what ran, so re-running it
gives the same numbers. Every field can be overridden by a dotted path ("train.epochs"), which
is how the CLI and the TUI apply their options on top of a preset.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
import types
import typing
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import tomli_w

from ibtui.errors import ConfigError, unknown_name

ACTIVATIONS = ("tanh", "relu", "sigmoid", "softsign", "softplus", "elu", "gelu", "linear", "hard-tanh")
ESTIMATORS = ("kde_upper", "kde_lower", "binning", "adaptive", "ksg", "edge")  # == ibtui.estimators.ESTIMATORS keys (a test checks)
DATASETS = ("tishby", "pokemon", "csv", "digits", "mnist", "fashion-mnist", "recorded")  # recorded: written by ibtui.Recorder
OPTIMIZERS = ("adam", "sgd")
INITS = ("truncated_normal", "torch_default")
SCHEDULES = ("saxe", "log", "every")
MI_SETS = ("all", "train", "test")
DEVICES = ("auto", "cpu", "cuda")
FORMAT_VERSION = 1
# Estimator limits: below 1e-30 the KDE kernel's scaled coordinates overflow float32 for activations
# of ordinary size; more than MAX_BINS bins per unit only costs memory.
MIN_NOISE_VARIANCE = 1e-30
MAX_NOISE_VARIANCE = 1e30
MAX_BINS = 100_000


@dataclass(frozen=True)
class DataConfig:
    name: str = "tishby"
    csv: str | None = None  # path to a CSV: required for "csv", optional (real data) for "pokemon"
    features: tuple[str, ...] | None = None  # csv: feature columns (None: every numeric column)
    label: str | None = None  # csv: the label column
    test_fraction: float = 0.2
    split_seed: int = 0  # the split is the same for every training seed of a run
    standardize: bool | None = None  # None: the dataset's default
    synthetic_seed: int = 0
    data_dir: str | None = None  # mnist / fashion-mnist: the folder of the IDX files (None: download cache)
    mi_samples: int = 10_000  # MI is measured on at most this many samples (a stratified subset)
    mi_subset_seed: int = 0  # the seed of that subset
    label_noise: float = 0.0  # fraction of training labels replaced at random (1.0: random-label control)
    label_noise_seed: int = 0


@dataclass(frozen=True)
class ModelConfig:
    hidden: tuple[int, ...] = (10, 7, 5, 4, 3)  # hidden widths; input and output follow the data
    activation: str = "tanh"
    init: str = "truncated_normal"  # truncated normal, std 1/sqrt(fan_out), zero bias (Saxe et al.)
    dropout: float = 0.0  # rate applied after each hidden activation while training
    layers: tuple[str, ...] | None = None  # recorded runs: the measured modules' names (hidden: their widths)
    factory: str | None = None  # "path/to/file.py:make_model": the user's nn.Module instead of the MLP

    @property
    def factory_label(self) -> str | None:
        """The model file's name and factory, "digits_cnn.py:make_model", or None for the MLP."""
        return None if self.factory is None else self.factory.replace("\\", "/").rpartition("/")[2]


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 10_000
    optimizer: str = "adam"
    lr: float = 4e-4
    batch_size: int = 256  # 0 means full batch
    l2: float = 0.0  # loss += l2 * sum of squared weights (Keras kernel_regularizer; biases excluded)
    seed: int = 0  # first seed; an ensemble uses seed, seed+1, ...
    seeds: int = 1  # networks trained at once as one batched model
    device: str = "auto"
    momentum: float = 0.0  # SGD only: b = momentum b + g, p -= lr b (torch.optim.SGD's rule)
    l2_mode: str = "loss"  # "loss": loss += l2 sum W^2; "weight_decay": W <- (1 - lr l2) W (own models only)


@dataclass(frozen=True)
class InfoConfig:
    estimators: tuple[str, ...] = ("kde_upper", "binning")
    noise_variance: float = 1e-3  # KDE sigma^2
    bin_size: float | None = 0.07  # binning: floor(t / bin_size) ...
    n_bins: int | None = None  # ... or, when set, n_bins equal bins on bin_range (from the data when unset)
    bin_range: tuple[float, float] | None = None
    adaptive_bins: int = 30
    on: str = "all"  # which samples MI is measured on
    measure_output: bool = True  # the softmax output counts as the last layer, as in the papers
    schedule: str = "saxe"
    snapshots: int = 200  # for the "log" schedule
    every: int = 1  # for the "every" schedule
    checkpoint_every: int = 10  # snapshots between checkpoints
    save_activations: bool = False
    grad_snr: bool = True
    adaptive_low: float | None = None  # adaptive: the fixed lowest edge (None: -1.000001 with negative values, else 0)
    ksg_k: int = 3  # ksg: neighbours (Kraskov et al.)


@dataclass(frozen=True)
class RunConfig:
    name: str = "custom"
    description: str = ""
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    info: InfoConfig = field(default_factory=InfoConfig)

    def with_overrides(self, overrides: dict[str, Any]) -> RunConfig:
        """A copy with dotted fields replaced ("train.epochs": 2000); None values are skipped."""
        config = self
        for path, value in overrides.items():
            if value is None:
                continue
            section, _, name = path.partition(".")
            if not name:
                config = replace(config, **{section: _coerce(RunConfig, section, value, section)})
                continue
            part = getattr(config, section)
            cls = type(part)
            config = replace(config, **{section: replace(part, **{name: _coerce(cls, name, value, path)})})
        validate(config)
        return config

    def to_dict(self) -> dict[str, Any]:
        return _drop_none(dataclasses.asdict(self))

    def to_toml(self) -> str:
        doc = self.to_dict()
        doc["format_version"] = FORMAT_VERSION
        return tomli_w.dumps(doc)


SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig, "info": InfoConfig}


def _drop_none(value: Any) -> Any:
    # TOML has no null: an absent key means "None" (the default) when read back.
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, tuple):
        return list(value)
    return value


def _type_of(cls: type, name: str) -> Any:
    return typing.get_type_hints(cls)[name]


def _coerce(cls: type, name: str, value: Any, where: str) -> Any:
    """Check value against the field's annotated type, converting lists to tuples."""
    known = [f.name for f in fields(cls)]
    if name not in known:
        raise ConfigError(unknown_name("setting", where, [f"{where.rpartition('.')[0]}.{k}".lstrip(".") for k in known]))
    hint = _type_of(cls, name)
    return _check(hint, value, where)


def _check(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _check(arg, value, where)
            except ConfigError as exc:
                errors.append(exc)
        raise errors[0]
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where} must be a list, not {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_check(args[0], v, where) for v in value)
        if len(value) != len(args):
            raise ConfigError(f"{where} must have {len(args)} entries, not {len(value)}")
        return tuple(_check(a, v, where) for a, v in zip(args, value))
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, not {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ConfigError(f"{where} must be a whole number, not {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where} must be a number, not {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"{where} must be a finite number, not {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be text, not {value!r}")
        return value
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        if isinstance(value, hint):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"[{where}] must be a table of settings")
        return _section_from_dict(hint, value, where)
    raise ConfigError(f"{where} has an unsupported type")  # pragma: no cover - a bug in a dataclass


def _section_from_dict(cls: type, table: dict[str, Any], where: str) -> Any:
    values = {}
    for key, value in table.items():
        values[key] = _coerce(cls, key, value, f"{where}.{key}")
    return cls(**values)


def from_dict(doc: dict[str, Any], source: str = "config") -> RunConfig:
    """Build and validate a RunConfig from a parsed TOML document."""
    doc = dict(doc)
    version = doc.pop("format_version", FORMAT_VERSION)
    if version != FORMAT_VERSION:
        raise ConfigError(f"{source} has format_version {version}, but this ibtui reads version {FORMAT_VERSION}")
    values: dict[str, Any] = {}
    for key, value in doc.items():
        if key in SECTIONS:
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: [{key}] must be a table of settings")
            values[key] = _section_from_dict(SECTIONS[key], value, key)
        elif key in ("name", "description"):
            values[key] = _check(str, value, key)
        else:
            raise ConfigError(f"{source}: " + unknown_name("section", key, [*SECTIONS, "name", "description"]))
    config = RunConfig(**values)
    try:
        validate(config)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    return config


def load_toml(path: str | Path) -> RunConfig:
    """Read a config or preset file; a malformed file names the file and line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    return with_factory_under(from_dict(doc, source=str(path)), path.parent)


def validate(config: RunConfig) -> None:
    """Raise ConfigError (one sentence) for values that cannot make a sensible run."""
    d, m, t, i = config.data, config.model, config.train, config.info
    _choice("dataset", d.name, DATASETS)
    if d.name == "csv" and (not d.csv or not d.label):
        raise ConfigError("the csv dataset needs data.csv (the file) and data.label (the label column)")
    if not 0.0 <= d.test_fraction <= 0.9:
        raise ConfigError(f"data.test_fraction must be between 0 and 0.9, not {d.test_fraction}")
    if not m.hidden:
        raise ConfigError("model.hidden must list at least one hidden layer width")
    for width in m.hidden:
        if width < 1:
            raise ConfigError(f"model.hidden widths must be positive integers, not {width}")
    _choice("activation", m.activation, ACTIVATIONS)
    _choice("initialiser", m.init, INITS)
    if not 0.0 <= m.dropout < 1.0:
        raise ConfigError(f"model.dropout must be in [0, 1), not {m.dropout}")
    if t.epochs < 1:
        raise ConfigError(f"train.epochs must be at least 1, not {t.epochs}")
    _choice("optimizer", t.optimizer, OPTIMIZERS)
    if t.lr <= 0:
        raise ConfigError(f"train.lr must be positive, not {t.lr}")
    if t.batch_size < 0:
        raise ConfigError(f"train.batch_size must be positive (or 0 for full batch), not {t.batch_size}")
    if t.l2 < 0:
        raise ConfigError(f"train.l2 must not be negative, not {t.l2}")
    if t.seeds < 1:
        raise ConfigError(f"train.seeds must be at least 1, not {t.seeds}")
    if t.seed < 0:
        raise ConfigError(f"train.seed must not be negative, not {t.seed}")
    _choice("device", t.device, DEVICES)
    if not i.estimators:
        raise ConfigError("info.estimators must name at least one estimator")
    for name in i.estimators:
        _choice("estimator", name, ESTIMATORS)
    if len(set(i.estimators)) != len(i.estimators):
        raise ConfigError("info.estimators names an estimator twice")
    if i.noise_variance <= 0:
        raise ConfigError(f"the noise variance must be positive, not {i.noise_variance}")
    if i.bin_size is not None and i.bin_size <= 0:
        raise ConfigError(f"info.bin_size must be positive, not {i.bin_size}")
    if i.n_bins is not None and i.n_bins < 1:
        raise ConfigError(f"info.n_bins must be at least 1, not {i.n_bins}")
    if i.bin_range is not None and not i.bin_range[0] < i.bin_range[1]:
        raise ConfigError(f"info.bin_range must be [low, high] with low < high, not {list(i.bin_range)}")
    if i.adaptive_bins < 1:
        raise ConfigError(f"info.adaptive_bins must be at least 1, not {i.adaptive_bins}")
    _choice("MI sample set", i.on, MI_SETS)
    _choice("schedule", i.schedule, SCHEDULES)
    if i.snapshots < 2:
        raise ConfigError(f"info.snapshots must be at least 2, not {i.snapshots}")
    if i.every < 1:
        raise ConfigError(f"info.every must be at least 1, not {i.every}")
    if i.checkpoint_every < 1:
        raise ConfigError(f"info.checkpoint_every must be at least 1, not {i.checkpoint_every}")
    # Estimator limits (the estimators' own checks use the same numbers).
    if not MIN_NOISE_VARIANCE <= i.noise_variance <= MAX_NOISE_VARIANCE:
        raise ConfigError(f"the noise variance must be between {MIN_NOISE_VARIANCE:g} and {MAX_NOISE_VARIANCE:g} "
                          f"(smaller ones overflow the kernel's float32 arithmetic), not {i.noise_variance:g}")
    if i.adaptive_bins > MAX_BINS:
        raise ConfigError(f"info.adaptive_bins must be at most {MAX_BINS:,}, not {i.adaptive_bins:,}")
    if i.n_bins is not None and i.n_bins > MAX_BINS:
        raise ConfigError(f"info.n_bins must be at most {MAX_BINS:,}, not {i.n_bins:,}")
    if not 1 <= i.ksg_k <= 1000:
        raise ConfigError(f"info.ksg_k must be between 1 and 1000, not {i.ksg_k}")
    _validate_data_sources(config)
    _validate_limits(config)
    _validate_own_model(config)


# Largest data.mi_samples: the KDE's time grows as N^2 (one 70,000-sample layer is ~5e9 pair terms).
MAX_MI_SAMPLES = 100_000


def _validate_data_sources(config: RunConfig) -> None:
    """The image sets, the MI subset, label noise and recorded runs (data.data_dir,
    data.mi_samples, data.mi_subset_seed, data.label_noise, data.label_noise_seed, model.layers)."""
    d, m = config.data, config.model
    if d.data_dir is not None and d.name not in ("mnist", "fashion-mnist"):
        raise ConfigError(f"data.data_dir applies only to mnist and fashion-mnist, not {d.name}")
    if d.data_dir is not None and (not d.data_dir or "\0" in d.data_dir):
        raise ConfigError("data.data_dir must be a folder path")
    if not 2 <= d.mi_samples <= MAX_MI_SAMPLES:
        raise ConfigError(f"data.mi_samples must be from 2 to {MAX_MI_SAMPLES:,}, not {d.mi_samples}")
    if not 0 <= d.mi_subset_seed < 2**63:
        raise ConfigError(f"data.mi_subset_seed must be from 0 to 2**63 - 1, not {d.mi_subset_seed}")
    if not 0.0 <= d.label_noise <= 1.0:
        raise ConfigError(f"data.label_noise must be a fraction from 0 to 1, not {d.label_noise}")
    if not 0 <= d.label_noise_seed < 2**63:
        raise ConfigError(f"data.label_noise_seed must be from 0 to 2**63 - 1, not {d.label_noise_seed}")
    if d.name == "recorded":
        if m.layers is None or len(m.layers) != len(m.hidden):
            raise ConfigError("a recorded run needs model.layers: one name per width of model.hidden")
    elif m.layers is not None:
        raise ConfigError("model.layers describes recorded runs only (data.name = \"recorded\")")


# -- range limits: what cannot be computed is refused before anything is written ----------------

MAX_EPOCHS = 10_000_000
MAX_LAYERS = 100
MAX_WIDTH = 100_000
MAX_SEEDS = 10_000
MAX_SEED = 2**63  # seeds live in int64 (torch, numpy): seed + seeds - 1 < 2**63
MAX_SNAPSHOTS = 200_000  # each one is a line of the log and an estimate per layer and seed
MIN_BIN_SIZE = 1e-9  # floor(t / bin_size) must stay an exact int64 key for any sensible t
MAX_NAME_BYTES = 200  # the run folder adds "-YYYYmmdd-HHMMSS[-N]"; a file name holds 255 bytes


def schedule_size(info: InfoConfig, epochs: int) -> int:
    """How many snapshots the schedule takes (engine/schedule.py), counted without building it."""
    if info.schedule == "every":
        return epochs // info.every + 1 + (epochs % info.every != 0)
    if info.schedule == "log":
        return min(info.snapshots, epochs + 1) + 1  # an upper bound: 0, the rounded points, the end
    # saxe: every epoch < 20, every 5th < 100, every 20th < 2000, then every 100th, and the end
    bands = ((0, 20, 1), (20, 100, 5), (100, 2000, 20))
    count = sum(len(range(lo, min(hi, epochs + 1), step)) for lo, hi, step in bands)
    if epochs >= 2000:
        count += (epochs - 2000) // 100 + 1
    last_kept = epochs < 20 or (epochs < 100 and epochs % 5 == 0) or (epochs < 2000 and epochs % 20 == 0) or epochs % 100 == 0
    return count + (not last_kept)


def _validate_limits(config: RunConfig) -> None:
    """Upper bounds, each sentence naming its limit: an absurd size must fail here, in
    milliseconds, not after minutes of building a schedule or allocating gigabytes."""
    d, m, t, i = config.data, config.model, config.train, config.info
    name = config.name
    if "\0" in name or "/" in name or "\\" in name or name in (".", ".."):
        raise ConfigError(f"the run name {name!r} must not contain '/', '\\' or NUL nor be '.' or '..' (it names the run's folder)")
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        raise ConfigError(f"the run name is {len(name.encode('utf-8', 'surrogatepass'))} bytes long; at most {MAX_NAME_BYTES} are allowed (it names the run's folder)")
    if t.epochs > MAX_EPOCHS:
        raise ConfigError(f"train.epochs must be at most {MAX_EPOCHS:,}, not {t.epochs:,}")
    builds_the_mlp = m.factory is None and d.name != "recorded"  # others only describe their layers in hidden
    if builds_the_mlp and len(m.hidden) > MAX_LAYERS:
        raise ConfigError(f"model.hidden lists {len(m.hidden):,} layers; at most {MAX_LAYERS} are allowed")
    if builds_the_mlp and max(m.hidden) > MAX_WIDTH:
        raise ConfigError(f"model.hidden widths must be at most {MAX_WIDTH:,}, not {max(m.hidden):,}")
    if t.seeds > MAX_SEEDS:
        raise ConfigError(f"train.seeds must be at most {MAX_SEEDS:,}, not {t.seeds:,}")
    if t.seed + t.seeds - 1 >= MAX_SEED:
        raise ConfigError(f"train.seed must be below 2**63 - train.seeds ({MAX_SEED - t.seeds:,}), not {t.seed:,}")
    for where, seed in (("data.split_seed", d.split_seed), ("data.synthetic_seed", d.synthetic_seed)):
        if not 0 <= seed < MAX_SEED:
            raise ConfigError(f"{where} must be in [0, 2**63), not {seed:,}")
    if i.bin_size is not None and i.bin_size < MIN_BIN_SIZE:
        raise ConfigError(f"info.bin_size must be at least {MIN_BIN_SIZE:g}, not {i.bin_size:g}")
    if i.snapshots > MAX_SNAPSHOTS:
        raise ConfigError(f"info.snapshots must be at most {MAX_SNAPSHOTS:,}, not {i.snapshots:,}")
    size = schedule_size(i, t.epochs)
    if size > MAX_SNAPSHOTS:
        hint = f" (raise info.every to at least {-(-t.epochs // (MAX_SNAPSHOTS - 2))})" if i.schedule == "every" else ""
        raise ConfigError(
            f"the {i.schedule} schedule over {t.epochs:,} epochs takes {size:,} snapshots; at most {MAX_SNAPSHOTS:,} are allowed{hint}"
        )


L2_MODES = ("loss", "weight_decay")


def _validate_own_model(config: RunConfig) -> None:
    """The user's model and the optimiser knobs (model.factory, train.momentum, train.l2_mode)."""
    m, t = config.model, config.train
    if m.factory is not None:
        path, sep, function = m.factory.rpartition(":")
        if not sep or not path or not function.isidentifier() or "\0" in m.factory:
            raise ConfigError(f"model.factory must be FILE.py:FUNCTION (e.g. models/cnn.py:make_model), not '{m.factory}'")
        if m.dropout > 0:
            raise ConfigError("model.dropout applies to the built-in MLP; put dropout in the model file (nn.Dropout)")
    if not 0.0 <= t.momentum < 1.0:
        raise ConfigError(f"train.momentum must be in [0, 1), not {t.momentum}")
    if t.momentum > 0 and t.optimizer != "sgd":
        raise ConfigError("train.momentum applies to SGD (--optimizer sgd); Adam has its own moment estimates")
    _choice("L2 mode", t.l2_mode, L2_MODES)
    if t.l2_mode == "weight_decay" and m.factory is None:
        raise ConfigError("train.l2_mode = \"weight_decay\" needs a model file (--model); the built-in MLP adds L2 to the loss")


def absolute_factory(spec: str | None, base: str | Path | None = None) -> str | None:
    """model.factory with its file as an absolute path: a relative one is under `base` (the
    folder of the TOML file that names it; the current directory when None)."""
    if spec is None:
        return None
    path, sep, function = spec.rpartition(":")
    if not sep or not path:
        return spec  # validation says what is wrong
    file = Path(path).expanduser()
    if not file.is_absolute():
        file = Path(base or ".") / file
    return f"{file.resolve()}:{function}"


def with_factory_under(config: RunConfig, base: Path) -> RunConfig:
    """The config with a relative model.factory read as relative to `base`."""
    if config.model.factory is None:
        return config
    return replace(config, model=replace(config.model, factory=absolute_factory(config.model.factory, base)))


def _choice(kind: str, value: str, known: tuple[str, ...]) -> None:
    if value not in known:
        raise ConfigError(unknown_name(kind, value, known))


def short_number(value: float | None) -> str:
    """Short numbers for titles: 0.07, 1e-3, 2.5e-4, 30."""
    if value is None:
        return "?"
    if value != 0 and abs(value) < 0.01:
        mantissa, exponent = f"{value:.3e}".split("e")
        mantissa = mantissa.rstrip("0").rstrip(".")
        return f"{mantissa}e{int(exponent)}"
    return f"{value:g}"


def what_ran(config: RunConfig, name: str) -> list[str]:
    """How titles say what ran: [name, the network, L2 when used]. The activation is named unless
    it is the name, so a tanh preset run with --activation relu reads "tanh, relu, hidden ..."."""
    t = config.train
    if config.model.factory:
        path, _, function = config.model.factory.rpartition(":")
        parts = [name, f"model {Path(path).name}:{function}"]
    else:
        network = "hidden " + "-".join(str(w) for w in config.model.hidden)
        parts = [name, network if name == config.model.activation else f"{config.model.activation}, {network}"]
    if t.optimizer == "sgd":
        parts.append(f"SGD momentum {t.momentum:g}" if t.momentum else "SGD")
    if t.l2 > 0:
        parts.append(f"weight decay {short_number(t.l2)}" if t.l2_mode == "weight_decay" else f"L2 {short_number(t.l2)}")
    if config.info.on != "all":
        parts.append(f"MI on {config.info.on} set")
    return parts
