"""Mutual-information estimators for the information plane, all results in bits.

Each estimator takes one layer's activation matrix T (N x d, numpy or torch, any float dtype,
CPU or CUDA) and the integer labels Y (N,) and returns (I(X;T), I(T;Y)) as Python floats.
The formulas are those of docs/design.md, "The estimators":

* KDE (Kolchinsky & Tracey; Saxe et al.), with D_ij = ||t_i - t_j||^2 and s2 the noise variance:
      I(X;T) = -(1/N) sum_i log((1/N) sum_j exp(-D_ij / (2 s2)))
      I(T;Y) = I(X;T) - sum_c p_c [-(1/N_c) sum_{i in c} log((1/N_c) sum_{j in c} exp(-D_ij/(2 s2)))]
  The lower bound uses 8 s2 in place of 2 s2.
* Binning (Shwartz-Ziv & Tishby; Saxe et al.): each distinct row of bin codes is one state of T;
  I(X;T) = H(T), I(T;Y) = H(T) - sum_c p_c H(T | Y=c).
* Adaptive binning (Chelombiev et al. 2019): as binning, with edges at equal-mass quantiles.

`estimate_layers` is the hot path (the training engine calls it at every snapshot). On the CPU
the KDE's kernel sums come from ibtui.estimators._kde_cpu, one loop compiled by numba that fuses the
distances, exp2 and the sums and keeps every intermediate in registers (1.7x faster than the
torch path below on 2 cores, and 100-1000x closer to float64; see that module). The torch path
serves CUDA, and the CPU where numba cannot be imported. How it is made fast, each lever measured
by benchmarks/bench_mi.py on a 2-core CPU:

* D is symmetric, so only the lower triangle is computed, in column stripes: stripe [c0, c1)
  holds D[c0:N, c0:c1]; its column sums give the sums of rows c0..c1 over j >= c0 and its row
  sums give the sums of rows c1..N over j in [c0, c1). Half the work of the full matrix.
* The exponent comes straight out of one matrix product of augmented rows [t, |t|^2, 1] and
  k [2t, -1, -|t|^2]^T, so no separate pass adds the squared norms. The data are centred first
  (KDE is shift invariant) which keeps |t|^2, and so the float32 cancellation error, small.
* exp is evaluated as exp2 with log2(e) folded into k: torch's CPU exp2 on float32 is about 4x
  faster than its exp, and the log sums come out in bits directly.
* The exponent is clamped to [-126, 0] in one pass: the upper end is D >= 0, the lower end keeps
  exp2 out of the denormal range where it is 2x slower; a term of 2^-126 instead of less
  changes nothing in a row sum that is >= 1 (the diagonal term i == j is set to exactly 1).
  Because the sum is >= 1, no max pass (logsumexp) is needed.
* One exp2 serves both bounds: the upper bound's term is the lower bound's to the 4th power
  (exponent D/(2 s2) = 4 * D/(8 s2)), taken as two in-place squarings after clamping at
  2^-31.5 so the squares never become denormal.
* Samples are sorted by label once per call, so each class is a contiguous block of rows and
  columns, and a row's class term is the sum over its class block of the same exponential matrix:
  one distance computation per layer serves both bounds, I(X;T) and every class term of I(T;Y).
* Stripes are sized to about _CHUNK_ELEMENTS entries (2^19: 2 MiB per buffer; measured 1.2x
  faster than 2^18 single-threaded, because every stripe costs ~25 Python-dispatched ops and the
  sums over a stripe's width are cheaper per entry on wider stripes), so peak memory is linear in
  N. The exponent is computed in the first bound's buffer and exp2 taken in place (two buffers
  per stripe, not three). Per-row sums are accumulated in float64; on CUDA the same code runs on
  the device and only the final scalars come to the host.
* With torch.get_num_threads() = T > 1 on CPU, the layers are spread over T Python threads of one
  torch thread each (the widest first), or, with fewer layers than threads, each layer's stripes
  are dealt round-robin to them. Torch's own intra-op threads were measured to scale badly on
  these medium-sized ops (on the 2-core machine 2 threads were at times slower than 1); whole
  layers per thread took the 6-layer N = 4096 benchmark from 79 ms on one thread to 55 ms on
  two (each thread's work runs ~20% slower when both cores are busy), and give bitwise the
  single-threaded result. A caller with one torch thread (the training engine's estimator
  thread on 2 cores) runs everything in its own thread, as before.
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

from ibtui.config import ESTIMATORS, InfoConfig
from ibtui.errors import ConfigError, DataError, unknown_name

__all__ = [
    "ESTIMATORS",
    "adaptive_binning_mi",
    "binning_mi",
    "estimate_layers",
    "kde_mi",
    "label_entropy",
]


DEFAULT_BIN_SIZE = 0.07  # Saxe et al.

_LOG2E = 1.0 / math.log(2.0)
_MIN_EXPONENT = -126.0  # 2^-126 is float32's smallest normal number
_UPPER_FLOOR = 2.0**-31.5  # (2^-31.5)^4 = 2^-126: squaring twice stays normal
# Entries per stripe of the N x N work; 2 MiB of float32 per buffer on CPU.
_CHUNK_ELEMENTS = 1 << 19
# At most this many threads for the KDE on CPU (torch.get_num_threads() decides below it).
_KDE_MAX_WORKERS = 8
_CHUNK_ELEMENTS_CUDA = 1 << 25
# A stripe is at least this many columns wide, so large N does not mean thousands of tiny stripes
# (buffers of 32 N floats: still linear in N, 7.5 MiB at N = 60,000).
_MIN_STRIPE_WIDTH = 32


# ----------------------------------------------------------------------------------------------
# Input handling


def _as_tensor(x, what: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach()
    try:
        return torch.as_tensor(np.asarray(x))
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ConfigError(f"{what} must be a numpy array or torch tensor ({exc}).") from None


def _activations(activations) -> torch.Tensor:
    t = _as_tensor(activations, "activations")
    if t.ndim != 2:
        raise ConfigError(f"activations must be a 2-D (N, d) matrix, got shape {tuple(t.shape)}.")
    if t.shape[0] < 1 or t.shape[1] < 1:
        raise ConfigError(f"activations must have at least one row and column, got shape {tuple(t.shape)}.")
    if not (t.is_floating_point() or t.dtype in (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8, torch.bool)):
        raise ConfigError(f"activations must be real numbers, got dtype {t.dtype}.")
    return t


def _labels(labels, n: int, device: torch.device) -> tuple[torch.Tensor, int]:
    """Labels as int64 codes 0..C-1 on `device`, and C."""
    y = _as_tensor(labels, "labels")
    if y.ndim != 1 or y.shape[0] != n:
        raise ConfigError(f"labels must be a 1-D array of length N={n}, got shape {tuple(y.shape)}.")
    if y.is_floating_point() or y.is_complex():
        raise ConfigError(f"labels must be integers, got dtype {y.dtype}.")
    y = y.to(device=device, dtype=torch.int64)
    classes, codes = torch.unique(y, return_inverse=True)
    return codes, int(classes.numel())


def _check_finite(t: torch.Tensor) -> None:
    if t.is_floating_point() and not bool(torch.isfinite(t).all()):
        raise DataError("activations contain NaN or infinite values.")


def _entropy_bits(counts: torch.Tensor) -> float:
    """Entropy in bits of the empirical distribution given by positive counts."""
    c = counts.to(torch.float64)
    n = c.sum()
    return float(((c / n) * torch.log2(n / c)).sum().item())


def label_entropy(labels) -> float:
    """H(Y) in bits of the empirical label distribution."""
    y = _as_tensor(labels, "labels")
    if y.ndim != 1 or y.shape[0] < 1:
        raise ConfigError(f"labels must be a non-empty 1-D array, got shape {tuple(y.shape)}.")
    if y.is_floating_point() or y.is_complex():
        raise ConfigError(f"labels must be integers, got dtype {y.dtype}.")
    _, counts = torch.unique(y, return_counts=True)
    return _entropy_bits(counts)


# ----------------------------------------------------------------------------------------------
# KDE


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
            self.data = torch.empty(size, dtype=torch.float32, device=device)
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
        # x_ij = left_i . right_j = -k D_ij in one product of (d + 2)-wide rows.
        self.left = torch.cat([t64, sq, torch.ones_like(sq)], dim=1).to(torch.float32)
        self.right_t = torch.cat([2.0 * k * t64, torch.full_like(sq, -k), -k * sq], dim=1).to(torch.float32).T.contiguous()

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
            x.clamp_(_MIN_EXPONENT, 0.0)  # D >= 0, and no denormals in exp2
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


def _check_noise_variance(noise_variance) -> float:
    try:
        s2 = float(noise_variance)
    except (TypeError, ValueError):
        raise ConfigError(f"noise_variance must be a number, got {noise_variance!r}.") from None
    if not (s2 > 0.0 and math.isfinite(s2)):
        raise ConfigError(f"noise_variance must be a positive finite number, got {noise_variance!r}.")
    return s2


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


def _kde_compiled(kernel, mats: Sequence[torch.Tensor], grouping: _Grouping, s2: float, bounds: tuple[str, ...], workers: int) -> list[list[tuple[float, float]]]:
    """The CPU path: ibtui.estimators._kde_cpu's fused loop over full rows of the kernel matrix.

    Every row is computed on its own, so the rows are split evenly over `workers` threads (the
    loop releases the GIL) and the result is bitwise the same for any number of threads."""
    n = grouping.n
    counts = np.asarray(grouping.counts)
    block_start = np.repeat(np.asarray(grouping.bounds[:-1], dtype=np.int64), counts)
    block_end = np.repeat(np.asarray(grouping.bounds[1:], dtype=np.int64), counts)
    # float64 through torch: numpy has no bfloat16, and scaled_columns centres in float64 anyway.
    columns = [kernel.scaled_columns(t[grouping.order].to(torch.float64).numpy(), s2) for t in mats]
    outs = [np.empty((4, n)) for _ in mats]
    cuts = [w * n // workers for w in range(workers + 1)]
    tasks = [(layer, cuts[w], cuts[w + 1]) for layer in range(len(mats)) for w in range(workers) if cuts[w] < cuts[w + 1]]

    def run(task: tuple[int, int, int]) -> None:
        layer, lo, hi = task
        kernel.kernel_row_sums(columns[layer], block_start, block_end, lo, hi, outs[layer])

    if workers <= 1:
        for task in tasks:
            run(task)
    else:
        with ThreadPoolExecutor(workers, thread_name_prefix="ibtui-kde") as pool:
            list(pool.map(run, tasks))
    # Rows of out: lower over all j, upper over all j, then the same over i's class.
    rows = [0 if bound == "lower" else 1 for bound in bounds]
    results = []
    for out in outs:
        sums = torch.from_numpy(out[rows])
        class_sums = torch.from_numpy(out[[r + 2 for r in rows]])
        results.append(_kde_from_sums(sums, class_sums, grouping))
    return results


@contextlib.contextmanager
def _threads(workers: int):
    """A pool of `workers` threads, each with torch.set_num_threads(1) and its own stripe buffer.

    Measured on the 2-core machine (benchmarks/bench_mi.py): torch's intra-op threads scale
    poorly on the many medium-sized ops of the KDE (each op is split and synchronised; with
    OMP_WAIT_POLICY=PASSIVE the sleeping OpenMP workers are probably woken for every op), while
    whole layers or stripes per Python thread do; torch ops release the GIL, so the threads run
    in parallel.
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
    s2 = _check_noise_variance(noise_variance)
    t = _activations(activations)
    codes, n_classes = _labels(labels, t.shape[0], t.device)
    _check_finite(t)
    grouping = _Grouping(codes, n_classes)
    return _kde_prepared([t], grouping, s2, (bound,))[0][0]


# ----------------------------------------------------------------------------------------------
# Binning


def _row_keys(codes: torch.Tensor) -> torch.Tensor:
    """One int64 key per row of integer codes, equal keys exactly for equal rows."""
    n, d = codes.shape
    lo = codes.min(dim=0).values
    span = (codes.max(dim=0).values - lo + 1).tolist()
    total = 1
    for s in span:
        total *= s
    if total < 2**62:
        # Mixed radix: key = sum_k (code_k - lo_k) * prod_{m > k} span_m.
        strides = []
        acc = 1
        for s in reversed(span):
            strides.append(acc)
            acc *= s
        strides = torch.tensor(strides[::-1], dtype=torch.int64, device=codes.device)
        return ((codes - lo) * strides).sum(dim=1)
    # Too many combinations for one int64: number the distinct rows instead.
    _, inverse = torch.unique(codes, dim=0, return_inverse=True)
    return inverse


def _mi_from_codes(codes: torch.Tensor, labels: torch.Tensor, n_classes: int) -> tuple[float, float]:
    """(H(T), H(T) - sum_c p_c H(T|Y=c)) in bits for integer codes (N, d)."""
    n = codes.shape[0]
    keys = _row_keys(codes)
    _, state = torch.unique(keys, return_inverse=True)
    n_states = int(state.max().item()) + 1
    joint = torch.bincount(state * n_classes + labels, minlength=n_states * n_classes)
    joint = joint.view(n_states, n_classes).to(torch.float64)
    per_state = joint.sum(dim=1)
    per_class = joint.sum(dim=0)
    # Sums of non-negative terms, so one state gives exactly 0, never -4e-16.
    h_t = float((per_state * torch.log2(n / per_state)).sum().item()) / n
    ratio = torch.where(joint > 0, per_class[None, :] / joint.clamp(min=1), torch.ones_like(joint))
    h_t_given_y = float((joint * torch.log2(ratio)).sum().item()) / n
    return h_t, h_t - h_t_given_y


def _check_positive(name: str, value, integer: bool = False):
    bad = ConfigError(f"{name} must be a positive {'integer' if integer else 'number'}, got {value!r}.")
    if integer:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise bad
        return int(value)
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise bad from None
    if not (v > 0.0 and math.isfinite(v)):
        raise bad
    return v


def _binning_codes(t: torch.Tensor, bin_size, n_bins, value_range) -> torch.Tensor:
    if (bin_size is None) == (n_bins is None):
        raise ConfigError("give exactly one of bin_size and n_bins for binning.")
    t = t.to(torch.float64)
    if bin_size is not None:
        size = _check_positive("bin_size", bin_size)
        return torch.floor(t / size).to(torch.int64)
    bins = _check_positive("n_bins", n_bins, integer=True)
    if value_range is None:
        # Unbounded activations (ReLU, linear) have no fixed range; bins on a fixed [-1, 1] would
        # put nearly everything in the edge bins and make the estimate meaningless, so the range
        # is the data's own (min and max of this activation matrix).
        lo, hi = float(t.min().item()), float(t.max().item())
    else:
        try:
            lo, hi = (float(v) for v in value_range)
        except (TypeError, ValueError):
            raise ConfigError(f"value_range must be a pair (low, high), got {value_range!r}.") from None
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise ConfigError(f"value_range must be finite with low < high, got {value_range!r}.")
    if hi <= lo:
        return torch.zeros(t.shape, dtype=torch.int64, device=t.device)
    # Equal bins on [lo, hi]; values outside are clipped into the edge bins.
    codes = torch.floor((t - lo) * (bins / (hi - lo))).to(torch.int64)
    return codes.clamp_(0, bins - 1)


def binning_mi(activations, labels, bin_size: float | None = None, n_bins: int | None = None, value_range: tuple[float, float] | None = None) -> tuple[float, float]:
    """Binning estimate (I(X;T), I(T;Y)) in bits.

    Exactly one of `bin_size` (code = floor(t / bin_size), Saxe et al.) or `n_bins` (equal bins on
    `value_range`, Tishby uses 30 on [-1, 1]; values outside are clipped into the edge bins) is
    given. With `n_bins` and no `value_range` the range is the data's min and max, because for
    unbounded activations a fixed range would make the estimate meaningless.
    """
    t = _activations(activations)
    codes_y, n_classes = _labels(labels, t.shape[0], t.device)
    _check_finite(t)
    codes = _binning_codes(t, bin_size, n_bins, value_range)
    return _mi_from_codes(codes, codes_y, n_classes)


def _adaptive_codes(t: torch.Tensor, n_bins) -> torch.Tensor:
    bins = _check_positive("n_bins", n_bins, integer=True)
    values = t.reshape(-1).to(torch.float64)
    ordered = torch.sort(values).values
    m = ordered.numel()
    # Interior edges at equal-mass quantiles of all the layer's values (pooled over units).
    positions = torch.tensor([(i * m) // bins for i in range(1, bins)], dtype=torch.int64, device=t.device)
    edges = ordered[positions.clamp_(0, m - 1)]
    return torch.bucketize(t.to(torch.float64), edges, right=True)


def adaptive_binning_mi(activations, labels, n_bins: int = 30) -> tuple[float, float]:
    """Adaptive binning (Chelombiev et al. 2019): (I(X;T), I(T;Y)) in bits.

    The `n_bins` bins of this layer have edges at equal-mass quantiles of all its activation
    values (pooled over units) in this matrix, so every bin holds about the same number of values.
    """
    t = _activations(activations)
    codes_y, n_classes = _labels(labels, t.shape[0], t.device)
    _check_finite(t)
    return _mi_from_codes(_adaptive_codes(t, n_bins), codes_y, n_classes)


# ----------------------------------------------------------------------------------------------
# All layers at once


def estimate_layers(layers: Sequence, labels, estimators: Sequence[str], *, noise_variance=1e-3, bin_size=None, n_bins=None, value_range=None, adaptive_bins=30) -> dict[str, list[tuple[float, float]]]:
    """{estimator: [(I(X;T), I(T;Y)) per layer, in order]} for every name in `estimators`.

    All layers share N and the labels. Labels are grouped once per call; for KDE one distance
    computation per layer serves both bounds, I(X;T) and every class term of I(T;Y). "binning"
    uses bin_size / n_bins / value_range (bin_size 0.07 when neither is given); "adaptive" uses
    adaptive_bins.
    """
    names = list(dict.fromkeys(estimators))
    for name in names:
        if name not in ESTIMATORS:
            raise ConfigError(unknown_name("estimator", name, ESTIMATORS))
    mats = [_activations(layer) for layer in layers]
    result: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    if not mats:
        return result
    n = mats[0].shape[0]
    for m in mats:
        if m.shape[0] != n:
            raise ConfigError(f"every layer must have the same number of rows N={n}, got {m.shape[0]}.")
    device = mats[0].device
    codes, n_classes = _labels(labels, n, device)
    kde_bounds = tuple(b for b, name in (("lower", "kde_lower"), ("upper", "kde_upper")) if name in names)
    if kde_bounds:
        s2 = _check_noise_variance(noise_variance)
        grouping = _Grouping(codes, n_classes)
    if "binning" in names:
        if bin_size is None and n_bins is None:
            bin_size = DEFAULT_BIN_SIZE
        if (bin_size is None) == (n_bins is None):
            raise ConfigError("give exactly one of bin_size and n_bins for binning.")
    mats = [m.to(device) for m in mats]
    for m in mats:
        _check_finite(m)
    if kde_bounds:
        for per_bound in _kde_prepared(mats, grouping, s2, kde_bounds):
            for bound, value in zip(kde_bounds, per_bound):
                result[f"kde_{bound}"].append(value)
    for m in mats:
        if "binning" in names:
            result["binning"].append(_mi_from_codes(_binning_codes(m, bin_size, n_bins, value_range), codes, n_classes))
        if "adaptive" in names:
            result["adaptive"].append(_mi_from_codes(_adaptive_codes(m, adaptive_bins), codes, n_classes))
    return result


def estimate_info_plane(layers: Sequence, labels, info: InfoConfig) -> dict[str, list[list[list[float]]]]:
    """{estimator: seed -> layer -> [I(X;T), I(T;Y)]} for one snapshot, with a run's [info] settings.

    `layers` holds one (seeds, N, width) array or tensor per layer. This is how the training engine
    and `ibtui estimate` both measure a snapshot, so the two agree exactly on the same values.
    """
    n_seeds, n_layers = layers[0].shape[0], len(layers)
    estimates = estimate_layers(
        [layer[s] for s in range(n_seeds) for layer in layers],
        labels,
        info.estimators,
        noise_variance=info.noise_variance,
        bin_size=None if info.n_bins else info.bin_size,  # n_bins, when set, wins
        n_bins=info.n_bins,
        value_range=info.bin_range,
        adaptive_bins=info.adaptive_bins,
    )
    return {
        name: [[list(values[s * n_layers + layer]) for layer in range(n_layers)] for s in range(n_seeds)]
        for name, values in estimates.items()
    }
