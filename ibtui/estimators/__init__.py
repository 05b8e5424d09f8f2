"""Mutual-information estimators for the information plane: one module per family, one registry.

Every estimator has the call shape

    NAME_mi(activations, labels, *, inputs=None, **parameters) -> (I(X;T), I(T;Y))

in bits: one layer's activations T (N x d, numpy or torch, any float dtype, CPU or CUDA), the
integer labels Y (N,), and, for the estimators that measure I(X;T) from samples of X, the inputs
(N x features). The families, each module opening with its formula and paper:

    kde.py       KDE upper and lower bounds (Kolchinsky & Tracey; Saxe et al.)
    binning.py   fixed-size or counted bins (Shwartz-Ziv & Tishby; Saxe et al.)
    adaptive.py  maximum-entropy adaptive bins (Chelombiev, Houghton & O'Donnell 2019)
    ksg.py       KSG k-nearest neighbours (Kraskov et al. 2004) and Ross's mixed estimator (2014)
    edge.py      EDGE hashing (Noshad, Zeng & Hero 2019)

`ESTIMATORS` maps each name to its `Estimator` spec; the config, the CLI, the app and
`ibtui estimate` read it, so adding an estimator is one module and one line below (and its name
in ibtui.config.ESTIMATORS, which a test holds equal to this registry's keys).
`estimate_info_plane` measures one snapshot with a run's [info] settings; `estimate_layers` is
the same for a list of layers with keyword settings. docs/estimators.md has measured bias and cost.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ibtui.config import InfoConfig
from ibtui.errors import ConfigError, unknown_name
from ibtui.estimators import _validate
from ibtui.estimators.adaptive import adaptive_mi
from ibtui.estimators.binning import DEFAULT_BIN_SIZE, bin_codes, binning_mi, codes_mi
from ibtui.estimators.edge import edge_mi
from ibtui.estimators.kde import kde_layers, kde_lower_mi, kde_mi, kde_upper_mi
from ibtui.estimators.ksg import ksg_mi

label_entropy = _validate.label_entropy

__all__ = [
    "ESTIMATORS",
    "Estimator",
    "adaptive_mi",
    "binning_mi",
    "edge_mi",
    "estimate_info_plane",
    "estimate_layers",
    "kde_lower_mi",
    "kde_mi",
    "kde_upper_mi",
    "ksg_mi",
    "label_entropy",
]


@dataclass(frozen=True)
class Estimator:
    """One registry entry: the function, its parameters as read from a run's [info] settings
    (`params(info)` -> keyword arguments; `reads` names those InfoConfig fields), whether it needs
    the inputs X, and a one-line description for listings. A function may carry `all_layers`, the
    same for a list of layers sharing labels and inputs, which estimate_layers then calls once."""

    name: str
    function: Callable[..., tuple[float, float]]
    params: Callable[[InfoConfig], dict]
    reads: tuple[str, ...]
    needs_inputs: bool
    about: str


def _binning_params(info: InfoConfig) -> dict:
    if info.n_bins:  # n_bins, when set, wins over bin_size
        return {"n_bins": info.n_bins, "value_range": info.bin_range}
    return {"bin_size": info.bin_size if info.bin_size is not None else DEFAULT_BIN_SIZE}


ESTIMATORS: dict[str, Estimator] = {
    e.name: e
    for e in (
        Estimator("kde_upper", kde_upper_mi, lambda i: {"noise_variance": i.noise_variance}, ("noise_variance",), False,
                  "KDE upper bound of T + N(0, s2), Kolchinsky & Tracey / Saxe et al."),
        Estimator("kde_lower", kde_lower_mi, lambda i: {"noise_variance": i.noise_variance}, ("noise_variance",), False,
                  "KDE lower bound of T + N(0, s2), Kolchinsky & Tracey / Saxe et al."),
        Estimator("binning", binning_mi, _binning_params, ("bin_size", "n_bins", "bin_range"), False,
                  "plug-in entropies of binned T, Shwartz-Ziv & Tishby / Saxe et al."),
        Estimator("adaptive", adaptive_mi, lambda i: {"n_bins": i.adaptive_bins, "low": i.adaptive_low},
                  ("adaptive_bins", "adaptive_low"), False, "maximum-entropy bins, Chelombiev et al. 2019"),
        Estimator("ksg", ksg_mi, lambda i: {"k": i.ksg_k}, ("ksg_k",), True,
                  "k-nearest neighbours: KSG for I(X;T), Ross 2014 for I(T;Y)"),
        Estimator("edge", edge_mi, lambda i: {}, (), True, "hashing dependence graph, Noshad et al. 2019"),
    )
}


def estimate_layers(layers: Sequence, labels, estimators: Sequence[str], *, inputs=None, noise_variance=1e-3,
                    bin_size=None, n_bins=None, value_range=None, adaptive_bins=30, adaptive_low=None,
                    ksg_k=3) -> dict[str, list[tuple[float, float]]]:
    """{estimator: [(I(X;T), I(T;Y)) per layer, in order]} for every name in `estimators`.

    All layers share N, the labels and the inputs. For KDE one distance computation per layer
    serves both bounds, I(X;T) and every class term of I(T;Y). "binning" uses bin_size / n_bins /
    value_range (bin_size 0.07 when neither is given). No value is NaN: a DataError instead.
    """
    names = list(dict.fromkeys(estimators))
    for name in names:
        if name not in ESTIMATORS:
            raise ConfigError(unknown_name("estimator", name, ESTIMATORS))
    mats = [_validate.activations(layer) for layer in layers]
    result: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    if not mats:
        return result
    n = mats[0].shape[0]
    for m in mats:
        if m.shape[0] != n:
            raise ConfigError(f"every layer must have the same number of rows N={n}, got {m.shape[0]}.")
    device = mats[0].device
    codes, n_classes = _validate.labels(labels, n, device)
    kde_bounds = tuple(b for b, name in (("lower", "kde_lower"), ("upper", "kde_upper")) if name in names)
    s2 = _validate.noise_variance(noise_variance) if kde_bounds else None
    if "binning" in names:
        if bin_size is None and n_bins is None:
            bin_size = DEFAULT_BIN_SIZE
        if (bin_size is None) == (n_bins is None):
            raise ConfigError("give exactly one of bin_size and n_bins for binning.")
    for name in names:
        if ESTIMATORS[name].needs_inputs and inputs is None:
            raise ConfigError(f"the {name} estimator measures I(X;T) from the inputs: pass inputs=, the (N, features) matrix X.")
    mats = [m.to(device) for m in mats]
    for m in mats:
        _validate.check_finite(m)
    if kde_bounds:
        for per_bound in kde_layers(mats, codes, n_classes, s2, kde_bounds):
            for bound, value in zip(kde_bounds, per_bound):
                result[f"kde_{bound}"].append(_validate.finite_result(f"kde_{bound}", value))
    others = {"adaptive": {"n_bins": adaptive_bins, "low": adaptive_low}, "ksg": {"k": ksg_k}, "edge": {}}
    for name in names:
        all_layers = getattr(ESTIMATORS[name].function, "all_layers", None)
        if name in others and all_layers is not None:  # one call for every layer: it shares work
            result[name] = all_layers(mats, codes, inputs=inputs, **others.pop(name))
    for m in mats:
        if "binning" in names:
            result["binning"].append(codes_mi(bin_codes(m, bin_size, n_bins, value_range), codes, n_classes))
        for name in names:
            if name in others:
                value = ESTIMATORS[name].function(m, codes, inputs=inputs, **others[name])
                result[name].append(_validate.finite_result(name, value))
    return result


def estimate_info_plane(layers: Sequence, labels, info: InfoConfig, inputs=None) -> dict[str, list[list[list[float]]]]:
    """{estimator: seed -> layer -> [I(X;T), I(T;Y)]} for one snapshot, with a run's [info] settings.

    `layers` holds one (seeds, N, width) array or tensor per layer, `inputs` the MI samples' X
    (N, features), which ksg and edge need. The training engine and `ibtui estimate` both measure
    through here, so the two agree exactly on the same values.
    """
    n_seeds, n_layers = layers[0].shape[0], len(layers)
    estimates = estimate_layers(
        [layer[s] for s in range(n_seeds) for layer in layers],
        labels,
        info.estimators,
        inputs=inputs,
        noise_variance=info.noise_variance,
        bin_size=None if info.n_bins else info.bin_size,  # n_bins, when set, wins
        n_bins=info.n_bins,
        value_range=info.bin_range,
        adaptive_bins=info.adaptive_bins,
        adaptive_low=info.adaptive_low,
        ksg_k=info.ksg_k,
    )
    return {
        name: [[list(values[s * n_layers + layer]) for layer in range(n_layers)] for s in range(n_seeds)]
        for name, values in estimates.items()
    }
