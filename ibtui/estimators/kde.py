"""KDE bounds on I(X;T) and I(T;Y) (Kolchinsky & Tracey 2017; Kolchinsky, Tracey & Wolpert 2019;
used by Saxe et al. 2018), in bits.

T is taken as the layer plus Gaussian noise of variance s2, T' = T + N(0, s2 I), and the mutual
information of that noisy channel is bounded by pairwise distances. With D_ij = ||t_i - t_j||^2,

    I(X;T)  ~ -(1/N) sum_i log((1/N) sum_j exp(-D_ij / (w s2)))
    I(T;Y)  ~ I(X;T) - sum_c p_c [-(1/N_c) sum_{i in c} log((1/N_c) sum_{j in c} exp(-D_ij / (w s2)))]

with w = 2 for the upper bound (the KL-divergence bound) and w = 8 for the lower bound (the
Bhattacharyya bound). The bounds are of the noisy T'; the noise-free layer of a deterministic
network has infinite I(X;T), which is why s2 is a parameter of the estimate, not a detail.

Two kernels compute the per-sample sums S_i = sum_j exp(-D_ij / (w s2)) and their class parts:
the compiled CPU loop in `_kde_cpu` (numba, distances from coordinate differences), and the torch
path below, which serves CUDA and CPUs where numba cannot load. The torch path takes D from one
float64 matrix product of augmented rows [t, |t|^2, 1] . k [2t, -1, -|t|^2]^T, stripe by stripe of
the lower triangle, so peak memory is linear in N; float64 keeps a tight cluster far from the mean
(ReLU scale) within 1e-4 bits of the exact sums, where float32 lost up to 6e-2 bits. Both bounds
share one exponential matrix (upper term = lower term ^ 4), and samples are sorted by label so a
class is one contiguous block. docs/estimators.md has the measured costs.
"""

from __future__ import annotations

import bisect
import contextlib
import math
import threading
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from ibtui.errors import ConfigError, DataError
from ibtui.estimators import _validate

DEFAULT_NOISE_VARIANCE = 1e-3  # Saxe et al.

_LOG2E = 1.0 / math.log(2.0)
_MIN_EXPONENT = -126.0  # exponents are clamped here, as in the compiled kernel
_UPPER_FLOOR = 2.0**-31.5  # (2^-31.5)^4 = 2^-126: the upper term is the clamped lower term ^ 4
# Entries per stripe of the N x N work (float64 buffers: 4 MiB each on CPU, 256 MiB on CUDA).
_CHUNK_ELEMENTS = 1 << 19
_CHUNK_ELEMENTS_CUDA = 1 << 25
_KDE_MAX_WORKERS = 8  # at most this many threads on CPU (torch.get_num_threads() decides below)
# A stripe is at least this many columns wide, so large N does not mean thousands of tiny stripes.
_MIN_STRIPE_WIDTH = 32
# Layers at least this wide may take the product path (_kde_gram), when _uses_gram says it costs
# less. Relative costs per pair of the lower triangle, in units of one coordinate of the
# difference kernel (d units a pair): the product path's first pass and its share of the
# product, and one coordinate of the refine (fitted on layers 32 to 1,024 wide,
# docs/performance.md).
_GRAM_MIN_WIDTH = 32
_PRODUCT_COST = 82.0
_REFINE_COST = 1.84


def _uses_gram(width: int, candidates: float) -> bool:
    """Whether the product path costs less than the difference kernel for a layer this wide with
    this fraction of its pairs refined."""
    return _PRODUCT_COST + _REFINE_COST * candidates * width < width


class _Grouping:
    """Samples sorted by label once: the permutation and each class's [start, end) block."""

    def __init__(self, codes: torch.Tensor, n_classes: int):
        self.order = torch.argsort(codes, stable=True)
        counts = torch.bincount(codes, minlength=n_classes).tolist()
        self.counts = [c for c in counts if c > 0]
        self.bounds = [0]
        for c in self.counts:
            self.bounds.append(self.bounds[-1] + c)
        self.n = self.bounds[-1]

    def block_end(self, index: int) -> int:
        """The end of the class block that holds sample `index`."""
        return self.bounds[bisect.bisect_right(self.bounds, index)]

    def blocks_in(self, lo: int, hi: int) -> list[tuple[int, int]]:
        """The class blocks intersected with [lo, hi), as absolute (start, end) pairs."""
        out = []
        for k in range(len(self.counts)):
            a, b = max(self.bounds[k], lo), min(self.bounds[k + 1], hi)
            if a < b:
                out.append((a, b))
        return out


def _stripes(n: int, chunk_elements: int) -> list[tuple[int, int]]:
    """The column stripes [c0, c1) of the lower triangle, each about chunk_elements entries."""
    out = []
    c0 = 0
    while c0 < n:
        rows = n - c0
        c1 = c0 + min(rows, max(1, _MIN_STRIPE_WIDTH, chunk_elements // rows))
        out.append((c0, c1))
        c0 = c1
    return out


class _Buffer:
    """The stripe buffer of one thread, grown on demand and reused across stripes and layers."""

    def __init__(self):
        self.data = None

    def get(self, nb: int, rows: int, width: int, device) -> torch.Tensor:
        size = nb * rows * width
        if self.data is None or self.data.numel() < size or self.data.device != device:
            self.data = None
            self.data = torch.empty(size, dtype=torch.float64, device=device)
        return self.data[:size].view(nb, rows, width)


class _KdeJob:
    """One layer's kernel sums, stripe by stripe; run() over any subset of the stripes returns
    that subset's own partial sums, so threads running different stripes never share memory."""

    def __init__(self, t: torch.Tensor, grouping: _Grouping, noise_variance: float, bounds: tuple[str, ...]):
        self.n, self.device, self.bounds = t.shape[0], t.device, bounds
        self.nb = len(bounds)
        self.grouping = grouping
        # Centre in float64 (identical rows stay bitwise identical, so their D is exactly 0).
        t64 = t.to(torch.float64)
        t64 = t64 - t64.mean(dim=0, keepdim=True)
        sq = (t64 * t64).sum(dim=1, keepdim=True)
        # The exponent computed is the lower bound's when it is asked (upper = lower^4).
        k = _LOG2E / ((8.0 if self.nb == 2 or bounds[0] == "lower" else 2.0) * noise_variance)
        # x_ij = left_i . right_j = -k D_ij in one float64 product of (d + 2)-wide rows: float32
        # would cancel |t_i|^2 + |t_j|^2 - 2 t_i.t_j to a few 1e-2 bits on ReLU-scale clusters.
        self.left = torch.cat([t64, sq, torch.ones_like(sq)], dim=1)
        self.right_t = torch.cat([2.0 * k * t64, torch.full_like(sq, -k), -k * sq], dim=1).T.contiguous()

    def chunk_elements(self, chunk_elements: int | None = None) -> int:
        if chunk_elements is None:
            chunk_elements = _CHUNK_ELEMENTS_CUDA if self.device.type == "cuda" else _CHUNK_ELEMENTS
        return chunk_elements

    def run(self, stripes: Sequence[tuple[int, int]], buffer: _Buffer) -> tuple[torch.Tensor, torch.Tensor]:
        """The (sums, class_sums), each (nb, N) float64, that `stripes` contribute."""
        n, nb, grouping = self.n, self.nb, self.grouping
        sums = torch.zeros(nb, n, dtype=torch.float64, device=self.device)
        class_sums = torch.zeros(nb, n, dtype=torch.float64, device=self.device)
        for c0, c1 in stripes:
            # Stripe: rows c0..N, columns c0..c1 of D (the lower triangle, D being symmetric).
            rows, width = n - c0, c1 - c0
            e = buffer.get(nb, rows, width, self.device)
            x = e[0]  # the exponent, then in place its exp2
            torch.mm(self.left[c0:], self.right_t[:, c0:c1], out=x)
            x[:width].diagonal().zero_()  # i == j: exactly exp(0) = 1
            x.clamp_(_MIN_EXPONENT, 0.0)  # D >= 0; the same floor as the compiled kernel
            x.exp2_()
            if nb == 2:
                torch.clamp(x, min=_UPPER_FLOOR, out=e[1])
                e[1].square_().square_()
            # Columns c0..c1: sums over rows c0..N, split by the rows' class blocks; a block adds to
            # the class term of the stripe's columns of its own class.
            for a, b in grouping.blocks_in(c0, n):
                part = e[:, a - c0 : b - c0, :].sum(dim=1)  # (nb, width)
                sums[:, c0:c1] += part
                if a < c1:
                    end = min(b, c1)
                    class_sums[:, a:end] += part[:, a - c0 : end - c0]
            # Rows c1..N: sums over the stripe's columns (the mirrored entries), split by the
            # columns' class blocks; a block adds to the class term of its class's rows beyond c1.
            if c1 < n:
                for a, b in grouping.blocks_in(c0, c1):
                    part = e[:, width:, a - c0 : b - c0].sum(dim=2)  # (nb, n - c1)
                    sums[:, c1:] += part
                    end = grouping.block_end(a)
                    if end > c1:
                        class_sums[:, c1:end] += part[:, : end - c1]
        return sums, class_sums

    def result(self, partials: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
        """(S, C), each (len(bounds), N) float64: S_i = sum_j exp(-D_ij / (k s2)) over all j, C_i the
        same over j in i's class; from the partials of runs that together cover
        every stripe once (added in the order given, so a fixed order gives a fixed result)."""
        sums, class_sums = partials[0]
        for s, c in partials[1:]:
            sums = sums + s
            class_sums = class_sums + c
        if self.nb == 2:
            rows_of = [0 if b == "lower" else 1 for b in self.bounds]  # computed as (lower, upper)
            sums, class_sums = sums[rows_of], class_sums[rows_of]
        return sums, class_sums


def _kde_from_sums(sums: torch.Tensor, class_sums: torch.Tensor, grouping: _Grouping) -> list[tuple[float, float]]:
    """(I(X;T), I(T;Y)) in bits per bound, from the per-sample kernel sums."""
    n = grouping.n
    # -mean(log2(S_i / N)): each term is <= 0 since S_i <= N, so the result is >= 0.
    ixt = -torch.log2(sums / n).mean(dim=1)  # (nb,)
    cond = torch.zeros_like(ixt)
    log_c = torch.log2(class_sums)
    for k, count in enumerate(grouping.counts):
        a, b = grouping.bounds[k], grouping.bounds[k + 1]
        h_c = math.log2(count) - log_c[:, a:b].mean(dim=1)
        cond += (count / n) * h_c
    ity = ixt - cond
    values = torch.stack([ixt, ity], dim=1).tolist()
    return [(float(a), float(b)) for a, b in values]




def _kde_prepared(mats: Sequence[torch.Tensor], grouping: _Grouping, s2: float, bounds: tuple[str, ...]) -> list[list[tuple[float, float]]]:
    """[(I(X;T), I(T;Y)) per bound] for each layer in `mats` (same N and device, all finite).

    On CPU with torch.get_num_threads() = T > 1, the work runs in T Python threads: the compiled
    kernel's rows split over them, or on the torch path whole layers or stripes, each thread with
    one torch thread (see _threads); the caller's own thread settings are left as they are.
    """
    on_cpu = mats[0].device.type == "cpu"
    workers = min(torch.get_num_threads(), _KDE_MAX_WORKERS) if on_cpu else 1
    compiled = _compiled_kernel() if on_cpu else None
    if compiled is not None:
        return _kde_compiled(compiled, mats, grouping, s2, bounds, workers)

    def layer(t: torch.Tensor, buffer: _Buffer) -> list[tuple[float, float]]:
        job = _KdeJob(t[grouping.order], grouping, s2, bounds)
        return _kde_from_sums(*job.result([job.run(_stripes(job.n, job.chunk_elements()), buffer)]), grouping)

    if workers <= 1:
        buffer = _Buffer()
        return [layer(t, buffer) for t in mats]
    with _threads(workers) as (pool, buffer_of_thread):
        if len(mats) >= workers:
            # Whole layers per thread, the widest first (its product costs most): each layer's
            # result is bitwise the single-threaded one.
            order = sorted(range(len(mats)), key=lambda i: -mats[i].shape[1])
            done = pool.map(lambda i: layer(mats[i], buffer_of_thread()), order)
            out = dict(zip(order, done))
            return [out[i] for i in range(len(mats))]
        # Fewer layers than threads: each layer's stripes dealt round-robin to the threads.
        results = []
        for t in mats:
            job = _KdeJob(t[grouping.order], grouping, s2, bounds)
            stripes = _stripes(job.n, job.chunk_elements())
            partials = list(pool.map(lambda w: job.run(stripes[w::workers], buffer_of_thread()), range(workers)))
            results.append(_kde_from_sums(*job.result(partials), grouping))
        return results


_NOT_LOADED = object()
_compiled = _NOT_LOADED


def _compiled_kernel():
    """ibtui.estimators._kde_cpu (the numba kernel), imported on first use so that commands which never
    estimate do not pay for numba's import; None where it cannot be imported, and the torch path
    runs instead (with a warning, since it is 2-3x slower)."""
    global _compiled
    if _compiled is _NOT_LOADED:
        try:
            from ibtui.estimators import _kde_cpu as kde_cpu
        except Exception as exc:  # numba missing, or built for another numpy: any failure means fall back
            warnings.warn(f"the compiled KDE kernel is unavailable ({exc}); using the slower torch path", RuntimeWarning, stacklevel=3)
            kde_cpu = None
        _compiled = kde_cpu
    return _compiled


# Rows of a layer's (4, N) sums on the CPU path: lower over all j, upper over all j, then the same
# over i's class (the row + 2).
_ROW = {"lower": 0, "upper": 1}


def _kde_compiled(kernel, mats: Sequence[torch.Tensor], grouping: _Grouping, s2: float, bounds: tuple[str, ...], workers: int) -> list[list[tuple[float, float]]]:
    """The CPU path: per layer, ibtui.estimators._kde_cpu's fused loop over the lower triangle of
    the kernel matrix, or for wide layers whose pairs are mostly far apart, _kde_gram's BLAS
    product with exact refinement of the near pairs (_uses_gram decides).

    Both cut a layer into row ranges fixed by N, run them on `workers` threads (the loops
    release the GIL) and add their parts in a fixed order, so the result is bitwise the same for
    any number of threads."""
    from ibtui.estimators import _kde_gram  # numba, like the kernel: only where it loaded

    n = grouping.n
    counts = np.asarray(grouping.counts)
    block_start = np.repeat(np.asarray(grouping.bounds[:-1], dtype=np.int64), counts)
    block_end = np.repeat(np.asarray(grouping.bounds[1:], dtype=np.int64), counts)
    # float64 through torch: numpy has no bfloat16, and the kernels centre in float64 anyway.
    sorted64 = [t[grouping.order].to(torch.float64).numpy() for t in mats]
    outs: list[np.ndarray | None] = [None] * len(mats)

    def difference_tasks(layers) -> list[tuple[int, int, int, np.ndarray]]:
        """Each layer's fixed row ranges (_kde_cpu.tasks), the widest layers' first (they cost most)."""
        out = []
        for layer in layers:
            columns = kernel.scaled_columns(sorted64[layer], s2)
            out += [(layer, lo, hi, columns) for lo, hi in kernel.tasks(n)]
        return sorted(out, key=lambda task: -task[3].shape[0])

    def run_difference(layers) -> None:
        work = difference_tasks(layers)
        parts = run_blocks(lambda task: kernel.task_sums(task[3], block_start, bounds, task[1], task[2]), work)
        by_layer: dict[int, list] = {layer: [] for layer in layers}
        for (layer, _, _, _), part in zip(work, parts):  # the sort above kept each layer's range order
            by_layer[layer].append(part)
        for layer, layer_parts in by_layer.items():
            sums = kernel.row_sums(layer_parts, n)  # per bound: over all j, over i's class
            outs[layer] = np.empty((4, n))
            for b, bound in enumerate(bounds):
                outs[layer][[_ROW[bound], _ROW[bound] + 2]] = sums[2 * b: 2 * b + 2]

    def prepared(layer: int):
        points = _kde_gram.prepare(sorted64[layer], s2)
        return points, _kde_gram.candidate_fraction(points)

    # Layers too narrow for the product to pay off even with no pair refined go straight to the
    # difference kernel, without preparing the product path.
    wide = [layer for layer, t in enumerate(sorted64) if t.shape[1] >= _GRAM_MIN_WIDTH and _uses_gram(t.shape[1], 0.0)]
    narrow = [layer for layer in range(len(mats)) if layer not in wide]
    with _threads(workers) as (pool, _):
        run_blocks = pool.map if workers > 1 else map
        # The wide layers are prepared (in the pool's one-thread threads, so the bits do not
        # depend on the thread count) while the narrow ones already run on the other threads.
        preparing = [pool.submit(prepared, layer) for layer in wide] if workers > 1 else None
        run_difference(narrow)
        ready = [f.result() for f in preparing] if preparing is not None else [prepared(layer) for layer in wide]
        rejected = []
        for layer, (points, fraction) in zip(wide, ready):
            if _uses_gram(points.full.shape[1], fraction):
                outs[layer] = _kde_gram.layer_sums(points, block_start, block_end, run_blocks)
            else:
                rejected.append(layer)
        run_difference(rejected)
    rows = [_ROW[bound] for bound in bounds]
    results = []
    for out in outs:
        sums = torch.from_numpy(out[rows])
        class_sums = torch.from_numpy(out[[r + 2 for r in rows]])
        results.append(_kde_from_sums(sums, class_sums, grouping))
    return results


@contextlib.contextmanager
def _threads(workers: int):
    """A pool of `workers` threads, each with torch.set_num_threads(1) and its own stripe buffer.

    Torch's intra-op threads scale poorly on the many medium-sized ops of the KDE, while whole
    layers or stripes per Python thread do (torch ops release the GIL); docs/estimators.md.
    """
    local = threading.local()

    def init() -> None:
        torch.set_num_threads(1)  # this OS thread's count (but see below)
        local.buffer = _Buffer()

    # torch.set_num_threads sets the calling thread's count and also a process-wide default that
    # a thread adopts when it first uses torch's thread pool; the caller's count (read first, so
    # its own thread is initialised) is put back as that default when the workers are done.
    caller = torch.get_num_threads()
    try:
        with ThreadPoolExecutor(workers, thread_name_prefix="ibtui-kde", initializer=init) as pool:
            yield pool, lambda: local.buffer
    finally:
        torch.set_num_threads(caller)


def kde_mi(activations, labels, noise_variance: float, bound: str = "upper") -> tuple[float, float]:
    """KDE estimate (I(X;T), I(T;Y)) in bits; `bound` is "upper" (2 s2) or "lower" (8 s2).

    I(T;Y) is a difference of two KDE estimates and is returned as computed, never clamped.
    0 <= I(X;T) <= log2 N and I(T;Y) <= H(Y) always hold. No case with I(T;Y) < 0 was found,
    neither in exact float64 arithmetic (random search with local minimisation over small point
    sets, classes and noise widths: the minimum approaches 0 as the points collapse) nor from
    float32 rounding near collapse (tests/test_mi.py keeps such cases as regression tests), but
    no proof of I(T;Y) >= 0 is known to us, so callers should not rely on it.
    """
    if bound not in ("upper", "lower"):
        raise ConfigError(f"bound must be 'upper' or 'lower', got {bound!r}.")
    s2 = _validate.noise_variance(noise_variance)
    t, codes, n_classes, _ = _validate.prepared(activations, labels)
    return _validate.finite_result(f"kde_{bound}", kde_layers([t], codes, n_classes, s2, (bound,))[0][0])



def kde_layers(mats: Sequence[torch.Tensor], codes: torch.Tensor, n_classes: int, s2: float, bounds: tuple[str, ...]) -> list[list[tuple[float, float]]]:
    """[(I(X;T), I(T;Y)) per bound in `bounds`] for each layer (same N and device, all finite):
    one distance computation per layer serves every bound and every class term."""
    scale = math.sqrt(_LOG2E / (8.0 * s2))  # the compiled kernel's float32 coordinates are t * scale
    for t in mats:
        # The largest difference of two values of a unit (exact: min and max do not round), the
        # largest the kernels' coordinates and their differences can be once centred and scaled.
        low, high = t.amin(dim=0), t.amax(dim=0)  # (torch.aminmax along dim 0 is 10x slower)
        reach = float((high.to(torch.float64) - low.to(torch.float64)).max()) * scale
        if not reach < 3.0e38:  # float32's largest number: beyond it differences become inf - inf
            least = s2 * (reach / 1.0e38) ** 2
            raise DataError(f"KDE with noise variance {s2:g} cannot measure activations this far apart "
                            f"(the scaled differences overflow float32); use a noise variance of at least {least:.3g}.")
    grouping = _Grouping(codes, n_classes)
    return _kde_prepared(list(mats), grouping, s2, bounds)


def _kde_bound(bound: str, activations, labels, inputs, noise_variance) -> tuple[float, float]:
    del inputs  # KDE measures I(X;T) from T alone
    return kde_mi(activations, labels, noise_variance, bound)


def kde_upper_mi(activations, labels, *, inputs=None, noise_variance: float = DEFAULT_NOISE_VARIANCE) -> tuple[float, float]:
    """The KDE upper bound (w = 2): (I(X;T), I(T;Y)) in bits of T + N(0, noise_variance I)."""
    return _kde_bound("upper", activations, labels, inputs, noise_variance)


def kde_lower_mi(activations, labels, *, inputs=None, noise_variance: float = DEFAULT_NOISE_VARIANCE) -> tuple[float, float]:
    """The KDE lower bound (w = 8): (I(X;T), I(T;Y)) in bits of T + N(0, noise_variance I)."""
    return _kde_bound("lower", activations, labels, inputs, noise_variance)
