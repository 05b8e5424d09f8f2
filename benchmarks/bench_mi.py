"""Benchmarks of ibtui.estimators: the snapshot hot path of the training engine.

Run as `python -m benchmarks.bench_mi` from the repository root (`--ksg`: the KDE and KSG lines only). Targets on the 2-core CPU machine
(torch.set_num_threads(2)): KDE upper + lower for 6 tanh layers (widths 10, 7, 5, 4, 3, 2) over
N = 4096 inputs with 2 classes in <= 40 ms, binning of the same in <= 10 ms, and KDE for N = 60,000,
d = 20 within 2 GB (peak memory linear in N).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time

import numpy as np
import torch

from benchmarks.common import format_table, row as _row, time_ms as _time
from ibtui import estimators as mi
from ibtui.estimators import kde as _kde

WIDTHS = (10, 7, 5, 4, 3, 2)
N = 4096
NOISE_VARIANCE = 1e-3


def _layers(n: int = N, seed: int = 0) -> tuple[list[torch.Tensor], torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    layers = [torch.tanh(torch.randn(n, w, generator=gen) * 2) for w in WIDTHS]
    labels = torch.randint(0, 2, (n,), generator=gen)
    return layers, labels


def reference_kde(layers, labels, noise_variance: float) -> dict[str, list[tuple[float, float]]]:
    """The plain PyTorch way: torch.cdist, logsumexp, a Python loop over classes, per bound."""
    out: dict[str, list[tuple[float, float]]] = {"kde_upper": [], "kde_lower": []}
    ln2 = float(np.log(2.0))
    for t in layers:
        t = t.to(torch.float64)
        n = t.shape[0]
        d2 = torch.cdist(t, t) ** 2
        for name, factor in (("kde_upper", 2.0), ("kde_lower", 8.0)):
            logk = -d2 / (factor * noise_variance)
            ixt = -(torch.logsumexp(logk, dim=1) - np.log(n)).mean()
            cond = 0.0
            for c in torch.unique(labels):
                m = labels == c
                nc = int(m.sum())
                sub = logk[m][:, m]
                cond = cond + nc / n * -(torch.logsumexp(sub, dim=1) - np.log(nc)).mean()
            out[name].append((float(ixt) / ln2, float(ixt - cond) / ln2))
    return out


_MEMORY_CHILD = r"""
import json, resource, sys, time, torch
torch.set_num_threads(2)


def peak_kib():
    # VmHWM is this process's own high-water mark; ru_maxrss is inherited across fork and exec
    # on Linux, so in a child of a big parent it reports the parent's peak.
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


from benchmarks.common import format_table, row as _row, time_ms as _time
from ibtui import estimators as mi
from ibtui.estimators import kde as _kde
n, d = int(sys.argv[1]), int(sys.argv[2])
gen = torch.Generator().manual_seed(0)
t = torch.tanh(torch.randn(n, d, generator=gen) * 2)
y = torch.randint(0, 2, (n,), generator=gen)
mi.estimate_layers([t[:256]], y[:256], ["kde_upper", "kde_lower"])  # load kernels, thread pool
before = peak_kib()
t0 = time.perf_counter()
r = mi.estimate_layers([t], y, ["kde_upper", "kde_lower"], noise_variance=1e-3)
seconds = time.perf_counter() - t0
after = peak_kib()
print(json.dumps({"before_kib": before, "after_kib": after, "seconds": seconds, "result": r}))
"""


def memory_row(n: int, d: int) -> dict:
    """Peak RSS growth of one KDE (both bounds) call, measured in a fresh subprocess."""
    proc = subprocess.run([sys.executable, "-c", _MEMORY_CHILD, str(n), str(d)], capture_output=True, text=True, check=True)
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    delta_mib = (data["after_kib"] - data["before_kib"]) / 1024
    ms = data["seconds"] * 1e3
    return {
        "name": f"kde upper+lower peak memory N={n} d={d}",
        "median_ms": ms,
        "min_ms": ms,
        "max_ms": ms,
        "ref_median_ms": None,
        "note": f"peak RSS +{delta_mib:.0f} MiB over {data['before_kib'] / 1024:.0f} MiB (target < 2048 MiB); one run",
    }


def engine_throughput_row(layers, labels, repeats: int) -> dict:
    """Snapshots per second through the engine's estimator processes (train.SnapshotPipeline):
    with training done, two processes of one torch thread each estimate one snapshot apiece."""
    from ibtui.config import InfoConfig
    from ibtui.engine.workers import estimator_pool, timed_estimate

    info = InfoConfig(estimators=("kde_upper", "kde_lower"), noise_variance=NOISE_VARIANCE)
    stacked = [layer.unsqueeze(0).numpy() for layer in layers]  # one seed
    labels = np.asarray(labels)
    with estimator_pool(2) as pool:
        list(pool.map(timed_estimate, *zip(*[(stacked, labels, info)] * 4)))  # start both, warm up
        per_snapshot = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            list(pool.map(timed_estimate, *zip(*[(stacked, labels, info)] * 8)))
            per_snapshot.append((time.perf_counter() - t0) * 1e3 / 8)
    return _row(
        f"kde upper+lower N={N}, 2 estimator processes", per_snapshot,
        note="ms per snapshot of throughput (8 at a time), as the engine estimates them once training waits or is done",
    )


def tishby_inputs(n: int = N) -> torch.Tensor:
    """The Tishby set's inputs: every 12-bit binary code once (n = 4096)."""
    return torch.from_numpy(((np.arange(n)[:, None] >> np.arange(12)) & 1).astype(np.float32))


def _one_thread_cpu_ratio(fn, reference, repeats: int) -> float:
    """Median CPU time of fn() over reference()'s, both on one torch thread, taken in turns: a
    ratio that a shared machine's load disturbs far less than wall time."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        times: dict = {fn: [], reference: []}
        for _ in range(repeats + 1):  # the first round warms up
            for f, spent in times.items():
                t0 = time.process_time()
                f()
                spent.append(time.process_time() - t0)
    finally:
        torch.set_num_threads(before)
    return statistics.median(times[fn][1:]) / statistics.median(times[reference][1:])


def ksg_rows(layers, labels, kde_ms: list[float], repeats: int, tree_reference: bool = True) -> list[dict]:
    """KSG + Ross for the 6 layers beside the KDE pair's time (kde_ms, the same process), with the
    Tishby set's binary inputs and with Gaussian ones, and for the binary inputs the ratio of CPU
    times on one thread; the reference is scipy's cKDTree path (the fallback without numba), timed
    once, whose estimates must be identical."""
    from ibtui.estimators import ksg as _ksg

    rows = []
    kde = statistics.median(kde_ms)
    run_kde = lambda: mi.estimate_layers(layers, labels, ["kde_upper", "kde_lower"], noise_variance=NOISE_VARIANCE)
    for name, inputs in (("binary 12-bit X", tishby_inputs()), ("Gaussian X", torch.randn(N, 12, generator=torch.Generator().manual_seed(1)))):
        run_ksg = lambda: mi.estimate_layers(layers, labels, ["ksg"], inputs=inputs)  # noqa: E731
        fast = _time(run_ksg, repeats)
        ref, note = None, ""
        if tree_reference and name.startswith("binary"):
            compiled, _ksg._compiled = _ksg._compiled_kernel(), None
            try:
                ref = _time(run_ksg, 1, warmup=0)
                tree = run_ksg()["ksg"]
            finally:
                _ksg._compiled = compiled
            same = "identical" if run_ksg()["ksg"] == tree else "DIFFERENT"
            note = f"; reference (cKDTree) {statistics.median(ref) / statistics.median(fast):.0f}x slower, estimates {same}"
        if name.startswith("binary"):
            note += f"; one thread, CPU time {_one_thread_cpu_ratio(run_ksg, run_kde, repeats):.1f}x the KDE pair's"
        rows.append(_row(f"ksg (k=3) 6 layers N={N}, {name}", fast, ref, f"{statistics.median(fast) / kde:.1f}x the KDE pair (target 2x){note}"))
    return rows


def ksg_only(repeats: int = 5) -> list[dict]:
    """The KDE pair and KSG lines alone (under a minute): `python -m benchmarks.bench_mi --ksg`."""
    torch.set_num_threads(2)
    layers, labels = _layers()
    kde = _time(lambda: mi.estimate_layers(layers, labels, ["kde_upper", "kde_lower"], noise_variance=NOISE_VARIANCE), repeats)
    rows = [_row(f"kde upper+lower 6 layers N={N}", kde)]
    return rows + ksg_rows(layers, labels, kde, repeats)


def run(quick: bool) -> list[dict]:
    torch.set_num_threads(2)
    repeats = 7 if quick else 21
    layers, labels = _layers()
    rows = []

    kde = _time(lambda: mi.estimate_layers(layers, labels, ["kde_upper", "kde_lower"], noise_variance=NOISE_VARIANCE), repeats)
    ref = _time(lambda: reference_kde(layers, labels, NOISE_VARIANCE), max(3, repeats // 4))
    fast = mi.estimate_layers(layers, labels, ["kde_upper", "kde_lower"], noise_variance=NOISE_VARIANCE)
    slow = reference_kde(layers, labels, NOISE_VARIANCE)
    diff = max(abs(a - b) for k in fast for fa, sa in zip(fast[k], slow[k]) for a, b in zip(fa, sa))
    ratio = statistics.median(ref) / statistics.median(kde)
    rows.append(_row(f"kde upper+lower 6 layers N={N}", kde, ref, f"target 40 ms; reference (cdist+logsumexp, float64) {ratio:.1f}x slower; max diff {diff:.1e} bits"))

    # The torch path: what CUDA runs, and the CPU's fallback without numba.
    compiled, _kde._compiled = _kde._compiled_kernel(), None
    try:
        torch_path = _time(lambda: mi.estimate_layers(layers, labels, ["kde_upper", "kde_lower"], noise_variance=NOISE_VARIANCE), repeats)
    finally:
        _kde._compiled = compiled
    rows.append(_row(f"kde upper+lower 6 layers N={N}, torch path", torch_path, None,
                     f"CUDA's code, the CPU fallback without numba: {statistics.median(torch_path) / statistics.median(kde):.1f}x the compiled kernel"))

    # The training engine's estimator thread runs with torch.set_num_threads(1) on 2 cores.
    torch.set_num_threads(1)
    single = _time(lambda: mi.estimate_layers(layers, labels, ["kde_upper", "kde_lower"], noise_variance=NOISE_VARIANCE), repeats)
    torch.set_num_threads(2)
    rows.append(_row(f"kde upper+lower 6 layers N={N} 1 thread", single, note="torch.set_num_threads(1), as in training"))

    rows.append(engine_throughput_row(layers, labels, 3 if quick else 7))

    one = _time(lambda: mi.estimate_layers(layers, labels, ["kde_upper"], noise_variance=NOISE_VARIANCE), repeats)
    rows.append(_row(f"kde upper only 6 layers N={N}", one))

    binning = _time(lambda: mi.estimate_layers(layers, labels, ["binning"]), repeats)
    rows.append(_row(f"binning (0.07) 6 layers N={N}", binning, note="target 10 ms"))
    tishby = _time(lambda: mi.estimate_layers(layers, labels, ["binning"], n_bins=30, value_range=(-1.0, 1.0)), repeats)
    rows.append(_row(f"binning (30 bins on [-1,1]) 6 layers N={N}", tishby))
    adaptive = _time(lambda: mi.estimate_layers(layers, labels, ["adaptive"]), repeats)
    rows.append(_row(f"adaptive (30 bins) 6 layers N={N}", adaptive))
    rows.extend(ksg_rows(layers, labels, kde, max(3, repeats // 4)))
    inputs = torch.randn(N, 12, generator=torch.Generator().manual_seed(1))
    edge = _time(lambda: mi.estimate_layers(layers, labels, ["edge"], inputs=inputs), max(3, repeats // 4))
    rows.append(_row(f"edge 6 layers N={N}", edge))

    rows.append(memory_row(20_000 if quick else 60_000, 20))
    return rows


def bias(sizes=(1000, 4000), repeats: int = 3) -> list[str]:
    """Each estimator's mean error against ground truth (tests/test_estimators_truth.py's cases):
    I(X;T) on correlated Gaussians (2 pairs, rho 0.8: 1.474 bits) for ksg and edge, I(T;Y) on the
    two-class Gaussian mixture (mu = 1) for every estimator, I(X;T') of a noisy tanh layer for KDE."""
    from tests.test_estimators_truth import correlated_gaussians, mixture, true_ixt_of_noisy_layer

    lines = []
    for n in sizes:
        errs: dict[str, list[float]] = {}
        for r in range(repeats):
            x, t, truth = correlated_gaussians(n, 0.8, 2, seed=100 + r)
            zeros = np.zeros(n, dtype=int)
            for name in ("ksg", "edge"):
                errs.setdefault(f"{name} I(X;T)", []).append(mi.ESTIMATORS[name].function(t, zeros, inputs=x)[0] - truth)
            tm, y, truth_y = mixture(n, 1.0, seed=200 + r)
            for name, spec in mi.ESTIMATORS.items():
                errs.setdefault(f"{name} I(T;Y)", []).append(spec.function(tm, y, inputs=tm)[1] - truth_y)
            if n <= 1000:
                rng = np.random.default_rng(300 + r)
                layer = np.tanh(rng.normal(size=(n, 3)) * 2.0)
                truth_x, _ = true_ixt_of_noisy_layer(layer, 1e-2, 4000, seed=400 + r)
                for name in ("kde_upper", "kde_lower"):
                    errs.setdefault(f"{name} I(X;T'), s2=1e-2", []).append(mi.ESTIMATORS[name].function(layer, rng.integers(0, 2, n), noise_variance=1e-2)[0] - truth_x)
        for key, values in errs.items():
            lines.append(f"N={n:5d}  {key:32s} bias {statistics.mean(values):+.3f} bits (sd {statistics.pstdev(values):.3f}, {repeats} draws)")
    return lines


if __name__ == "__main__":
    if "--bias" in sys.argv:
        print("\n".join(bias()))
    elif "--ksg" in sys.argv:
        print(format_table(ksg_only()))
    else:
        print(format_table(run(quick="--quick" in sys.argv)))
