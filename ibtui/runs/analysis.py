"""Compression verdicts: did I(X;T) (or I(T;Y)) peak and then fall, by more than noise explains?

Everything here is a pure function of plain arrays: `epochs` (S,) and `values` (seeds, S), one
curve per seed of one layer and one estimator, so the rule can be tested on synthetic curves.
`analyse_snapshots` / `analyse_run` apply it to every layer and estimator of a run and return a
JSON-able dict (stored in summary.json as "analysis", printed by `ibtui report`).

THE RULE (CompressionRule, defaults in brackets). For each seed s, with S snapshots:

1. Smooth: a centred moving average over w snapshots (w odd, w = S/20 rounded, clipped to
   [3, 15]); the window shrinks at both ends, so the last smoothed value averages the last
   (w+1)/2 raw values. Snapshots, not epochs, are the unit, so the saxe and log schedules keep
   their resolution early in training.
2. Peak P_s: the maximum of the smoothed curve, at epoch e_s (the end of the fitting phase).
   End E_s: the last smoothed value. Drop d_s = P_s - E_s >= 0 (0 for a curve that peaks last).
3. Jitter sigma_s: std(diff(raw late curve)) / sqrt(2) over the last third of the snapshots
   (at least 3): the snapshot-to-snapshot noise of the estimate, trend removed.
4. Across the n seeds: the drop d = mean_s d_s, its spread sd = std_s d_s (ddof 1), and its
   standard error SE = max(sd / sqrt(n), sqrt(mean_s sigma_s^2 * (1/w + 2/(w+1)) / n)): the
   across-seed error, but never less than what the jitter alone puts on one peak-minus-end
   difference (the only error there is for a single seed).
5. Taking a maximum of a noisy curve makes d > 0 even for a flat one; the expected excess is
   bias = mean_s sigma_s * sqrt(2 ln S / w) (the largest of S smoothed noise values) and is
   subtracted before the significance test, so many seeds of pure noise do not add up to
   "compression".
6. Threshold tau = max(min_drop_bits [0.02 bits], min_drop_fraction [2 %] * mean_s P_s).

   compression    d >= tau  and  d - bias >= k [3] * SE
   none           d + k * SE < tau       (any drop is confidently smaller than the threshold)
   inconclusive   otherwise              (too noisy to tell, or a large drop within the noise)

The fitting phase runs from the first snapshot to the peak epoch (rise = P - first smoothed
value); the compression phase from the peak epoch to the end, when the verdict is compression.

Gradient phases (Shwartz-Ziv & Tishby): per seed and layer, SNR = |mean gradient| / |std of the
minibatch gradients| at each snapshot. Its log10 is smoothed as above; the drift -> diffusion
transition is the first snapshot epoch at which the smoothed SNR falls below 1 after having been
at or above 1 (drift first). None when it never drops below 1 (still drifting), when it starts
below 1 (no drift phase seen) or with full-batch training (no minibatch noise: SNR is infinite).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

VERDICTS = ("compression", "none", "inconclusive")
QUANTITIES = ("ixt", "ity")  # index 0 and 1 of an information-plane point


@dataclass(frozen=True)
class CompressionRule:
    min_drop_bits: float = 0.02
    min_drop_fraction: float = 0.02
    k: float = 3.0  # standard errors the bias-corrected drop must stand above zero
    min_window: int = 3
    max_window: int = 15
    window_fraction: float = 0.05  # w = S * window_fraction
    late_fraction: float = 1.0 / 3.0  # the late curve whose jitter is the noise

    def window(self, n_snapshots: int) -> int:
        w = int(round(n_snapshots * self.window_fraction))
        w = max(self.min_window, min(self.max_window, w))
        if w % 2 == 0:
            w += 1
        return max(1, min(w, n_snapshots if n_snapshots % 2 else n_snapshots - 1))


DEFAULT_RULE = CompressionRule()

RULE_TEXT = (
    "compression: the mean drop d (smoothed peak minus smoothed end, per seed) >= "
    "max(min_drop_bits, min_drop_fraction * peak) and d - noise bias >= k standard errors "
    "(across seeds, floored by the late-curve jitter); none: d + k*SE below that threshold; "
    "inconclusive otherwise"
)


# -- curves --------------------------------------------------------------------------------------


def smooth(values: Sequence[float], window: int) -> np.ndarray:
    """Centred moving average over `window` points; the window shrinks at the ends."""
    v = np.asarray(values, dtype=float)
    n = v.size
    if n == 0 or window <= 1:
        return v.copy()
    half = window // 2
    padded = np.concatenate([[0.0], np.cumsum(v)])
    lo = np.clip(np.arange(n) - half, 0, n)
    hi = np.clip(np.arange(n) + half + 1, 0, n)
    return (padded[hi] - padded[lo]) / (hi - lo)


def jitter(values: Sequence[float], late_fraction: float = DEFAULT_RULE.late_fraction) -> float:
    """The snapshot-to-snapshot noise of the late curve: std of its differences / sqrt(2)."""
    v = np.asarray(values, dtype=float)
    count = max(3, int(math.ceil(v.size * late_fraction)))
    late = v[-count:]
    if late.size < 3:
        return 0.0
    return float(np.std(np.diff(late), ddof=1) / math.sqrt(2.0))


def analyse_curve(epochs: Sequence[float], values, rule: CompressionRule = DEFAULT_RULE) -> dict[str, Any]:
    """The fitting/compression phases and the verdict of one quantity of one layer.

    `values` is (seeds, S) or (S,) for one seed, in bits; `epochs` the S snapshot epochs.
    """
    epochs = np.asarray(epochs, dtype=float)
    v = np.asarray(values, dtype=float)
    if v.ndim == 1:
        v = v[None, :]
    if v.ndim != 2 or v.shape[1] != epochs.size:
        raise ValueError(f"values must be (seeds, {epochs.size}), got shape {v.shape}")
    finite_cols = np.isfinite(v).all(axis=0)
    epochs, v = epochs[finite_cols], v[:, finite_cols]
    n_seeds, n = v.shape
    if n < 3:
        return {"verdict": "inconclusive", "reason": f"only {n} snapshots", "n_seeds": n_seeds}
    w = rule.window(n)
    peaks, ends, firsts, peak_epochs, drops, sigmas = [], [], [], [], [], []
    for curve in v:
        sm = smooth(curve, w)
        p = int(np.argmax(sm))
        peaks.append(sm[p])
        ends.append(sm[-1])
        firsts.append(sm[0])
        peak_epochs.append(float(epochs[p]))
        drops.append(sm[p] - sm[-1])
        sigmas.append(jitter(curve, rule.late_fraction))
    drops_a, sig = np.array(drops), np.array(sigmas)
    d = float(drops_a.mean())
    sd = float(drops_a.std(ddof=1)) if n_seeds > 1 else 0.0
    jitter_se = math.sqrt(float(np.mean(sig**2)) * (1.0 / w + 2.0 / (w + 1)) / n_seeds)
    se = max(sd / math.sqrt(n_seeds), jitter_se)
    bias = float(sig.mean()) * math.sqrt(2.0 * math.log(n) / w)
    peak = float(np.mean(peaks))
    tau = max(rule.min_drop_bits, rule.min_drop_fraction * abs(peak))
    if d >= tau and d - bias >= rule.k * se:
        verdict = "compression"
    elif d + rule.k * se < tau:
        verdict = "none"
    else:
        verdict = "inconclusive"
    peak_epoch = float(np.median(peak_epochs))
    return {
        "verdict": verdict,
        "peak_epoch": int(round(peak_epoch)),
        "peak_epochs": [int(e) for e in peak_epochs],
        "peak_bits": peak,
        "first_bits": float(np.mean(firsts)),
        "end_bits": float(np.mean(ends)),
        "rise_bits": float(np.mean(np.array(peaks) - np.array(firsts))),
        "drop_bits": d,
        "drop_std": sd,
        "drop_fraction": d / peak if peak > 0 else 0.0,
        "drop_se": se,
        "noise_bits": float(sig.mean()),
        "noise_bias": bias,
        "threshold_bits": tau,
        "n_seeds": n_seeds,
        "window": w,
        "fitting_epochs": [int(epochs[0]), int(round(peak_epoch))],
        "compression_epochs": [int(round(peak_epoch)), int(epochs[-1])] if verdict == "compression" else None,
    }


def snr_transition(epochs: Sequence[float], mean_norms, std_norms, rule: CompressionRule = DEFAULT_RULE) -> dict[str, Any]:
    """The drift -> diffusion transition of one layer: (seeds, S) gradient norms -> epochs.

    Returns {"epoch": median over seeds or None, "epochs": per seed (None where not found),
    "reason": why None, when it is}.
    """
    epochs = np.asarray(epochs, dtype=float)
    m = np.atleast_2d(np.asarray(mean_norms, dtype=float))
    s = np.atleast_2d(np.asarray(std_norms, dtype=float))
    if m.shape[1] < 2:
        return {"epoch": None, "epochs": [None] * m.shape[0], "reason": "too few snapshots with gradients"}
    if not (s > 0).any():
        return {"epoch": None, "epochs": [None] * m.shape[0], "reason": "no minibatch noise (full-batch training)"}
    w = rule.window(m.shape[1])
    found: list[int | None] = []
    reasons = []
    for mean, std in zip(m, s):
        ratio = np.divide(mean, std, out=np.full(mean.shape, np.inf), where=std > 0)
        log_snr = np.clip(np.log10(np.maximum(ratio, 1e-12)), -12.0, 12.0)  # full batch: inf -> 12
        sm = smooth(log_snr, w)
        if sm[0] < 0:
            found.append(None)
            reasons.append("SNR below 1 from the first measurement (no drift phase seen)")
            continue
        below = np.nonzero(sm < 0)[0]
        if below.size == 0:
            found.append(None)
            reasons.append("SNR never fell below 1 (still in the drift phase)")
            continue
        found.append(int(epochs[below[0]]))
    known = [e for e in found if e is not None]
    result: dict[str, Any] = {"epoch": int(np.median(known)) if known else None, "epochs": found}
    if not known:
        result["reason"] = reasons[0] if reasons else "not found"
    return result


# -- runs ---------------------------------------------------------------------------------------


def _as_record(snapshot: Any) -> dict[str, Any]:
    return snapshot if isinstance(snapshot, dict) else snapshot.to_record()


def analyse_snapshots(snapshots: Sequence[Any], layer_names: Sequence[str] | None = None, rule: CompressionRule = DEFAULT_RULE) -> dict[str, Any]:
    """Verdicts for every estimator and layer, and the SNR transition per layer; JSON-able.

    `snapshots` are Snapshot objects or their records (dicts as in snapshots.jsonl), in epoch order.
    """
    records = [_as_record(s) for s in snapshots]
    out: dict[str, Any] = {"rule": {**asdict(rule), "text": RULE_TEXT}, "snapshots": len(records), "estimators": {}, "snr": []}
    if not records:
        out["layers"] = list(layer_names or [])
        return out
    epochs = np.array([r["epoch"] for r in records], dtype=float)
    n_seeds = len(records[0]["train_loss"])
    out["seeds"] = n_seeds
    n_layers = None
    for estimator in records[0].get("mi", {}):
        values = np.array([r["mi"][estimator] for r in records], dtype=float)  # (S, seeds, layers, 2)
        n_layers = values.shape[2]
        per_layer = []
        for layer in range(n_layers):
            entry = {"layer": _name(layer_names, layer, n_layers)}
            for q, key in enumerate(QUANTITIES):
                entry[key] = analyse_curve(epochs, values[:, :, layer, q].T, rule)
            per_layer.append(entry)
        out["estimators"][estimator] = per_layer
    graded = [r for r in records if r.get("grad")]
    if graded:
        g_epochs = [r["epoch"] for r in graded]
        means = np.array([r["grad"]["mean"] for r in graded], dtype=float)  # (S, seeds, weight layers)
        stds = np.array([r["grad"]["std"] for r in graded], dtype=float)
        n_w = means.shape[2]
        for layer in range(n_w):
            entry = {"layer": _name(layer_names, layer, n_w)}
            entry.update(snr_transition(g_epochs, means[:, :, layer].T, stds[:, :, layer].T, rule))
            out["snr"].append(entry)
    out["layers"] = [_name(layer_names, i, n_layers or 0) for i in range(n_layers or 0)]
    return out


def _name(names: Sequence[str] | None, index: int, count: int) -> str:
    if names and len(names) >= count and index < len(names):
        return str(names[index])
    return f"layer {index + 1}"


def analyse_run(record: Any, rule: CompressionRule = DEFAULT_RULE) -> dict[str, Any]:
    """analyse_snapshots for a RunRecord (ibtui.runs.record.load_run)."""
    return analyse_snapshots(record.snapshots, record.layer_names or None, rule)


def verdict_counts(analysis: dict[str, Any], estimator: str, quantity: str = "ixt", layers: Sequence[int] | None = None) -> dict[str, int]:
    """How many layers (all, or the given indices) got each verdict."""
    entries = analysis.get("estimators", {}).get(estimator, [])
    chosen = [entries[i] for i in (layers if layers is not None else range(len(entries))) if i < len(entries)]
    counts = {v: 0 for v in VERDICTS}
    for entry in chosen:
        counts[entry[quantity]["verdict"]] = counts.get(entry[quantity]["verdict"], 0) + 1
    return counts


VERDICT_COLUMNS = ("layer", "estimator", "I(X;T) peak epoch", "drop bits", "drop %", "I(X;T)",
                   "I(T;Y) peak epoch", "drop bits", "drop %", "I(T;Y)")


def verdict_rows(analysis: dict[str, Any]) -> list[list[str]]:
    """The verdict table as text cells (VERDICT_COLUMNS), for `ibtui report` and REPORT.md alike."""
    rows = []
    for estimator, entries in analysis.get("estimators", {}).items():
        for entry in entries:
            cells = [entry["layer"], estimator]
            for quantity in ("ixt", "ity"):
                c = entry[quantity]
                if "drop_bits" not in c:
                    cells += ["-", "-", "-", c["verdict"]]
                    continue
                spread = f" ± {c['drop_std']:.3f}" if c.get("n_seeds", 1) > 1 else ""
                cells += [f"{c['peak_epoch']:,}", f"{c['drop_bits']:.3f}{spread}", f"{100 * c['drop_fraction']:.1f}", c["verdict"]]
            rows.append(cells)
    return rows
