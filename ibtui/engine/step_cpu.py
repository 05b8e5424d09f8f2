"""The training step on the CPU (forward, softmax cross-entropy, backward) compiled by numba.

These networks are tiny (a 10-seed step of the tanh preset is 2 million multiply-adds), so a
step made of many library calls spends its time in dispatch; here one call does the whole step
for every seed, and the seeds, which share nothing, are spread over threads (numba's prange).
train_step is one step; train_steps is many, the optimiser's update included, in one parallel
region (starting a region wakes the sleeping worker threads).

Layout, as in mlp.py: per layer one block (fan_out, fan_in + 1) per seed, W transposed with the
bias as its last column, all blocks in one flat float32 buffer; the gradients land in a buffer of
the same layout. Activations are feature-major (width, batch) per seed, so every inner loop runs
over the batch, contiguous, and LLVM vectorises it. The minibatch is gathered, through the
seed's order of the epoch, from the training table (n_in + 1 + classes, N): the inputs, a row of
ones, the one-hot labels. Loss: mean cross-entropy over the minibatch + l2 * sum(W^2) per seed.

Numerics: float32 throughout; sums over the batch are vectorised (reassociated), as BLAS does.
tanh is Eigen's rational approximation (within 3.3e-7 of float64 tanh, tested), because a libm
call per element blocks vectorisation; sigmoid is (1 + tanh(z/2)) / 2; the softmax's exp is the
KDE's 2^x construction (ibtui._fastmath.exp2). Every function uses error_model="numpy": under
Python's error model a division checks for zero and its loop does not vectorise. Measured
levers: docs/performance.md.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import njit, prange

from ibtui._fastmath import FAST as _FAST, LOG2E as _LOG2E, MIN_EXPONENT, exp2 as _exp2

# Every activation of ibtui.config.ACTIVATIONS, by code.
ACTIVATION_CODES = {"tanh": 0, "relu": 1, "linear": 2, "sigmoid": 3, "hard-tanh": 4, "softsign": 5, "softplus": 6,
                    "elu": 7, "gelu": 8}
_INV_SQRT2 = np.float32(0.7071067811865476)
_INV_SQRT_2PI = np.float32(0.3989422804014327)

_TANH_CLAMP = np.float32(7.90531110763549805)
_TANH_TINY = np.float32(0.0004)
_A1, _A3, _A5, _A7, _A9, _A11, _A13 = (np.float32(c) for c in (
    4.89352455891786e-03, 6.37261928875436e-04, 1.48572235717979e-05, 5.12229709037114e-08,
    -8.60467152213735e-11, 2.00018790482477e-13, -2.76076847742355e-16,
))
_B0, _B2, _B4, _B6 = (np.float32(c) for c in (
    4.89352518554385e-03, 2.26843463243900e-03, 1.18534705686654e-04, 1.19825839466702e-06,
))


@njit(inline="always", fastmath=_FAST, error_model="numpy")
def _tanh(z):
    """Eigen's float32 tanh: an odd rational function on [-7.9, 7.9] (tanh rounds to +-1 beyond)."""
    x = min(max(z, -_TANH_CLAMP), _TANH_CLAMP)
    x2 = x * x
    p = _A13 * x2 + _A11
    p = p * x2 + _A9
    p = p * x2 + _A7
    p = p * x2 + _A5
    p = p * x2 + _A3
    p = p * x2 + _A1
    q = _B6 * x2 + _B4
    q = q * x2 + _B2
    q = q * x2 + _B0
    r = x * p / q
    return z if abs(z) < _TANH_TINY else r


@njit(inline="always", fastmath=_FAST, error_model="numpy")
def _exp(x):
    """e^x for float32 x <= 0 (the shifted logits), through 2^x; below e^-87 it is 2^-126."""
    return _exp2(max(x * _LOG2E, MIN_EXPONENT))


@njit(fastmath=_FAST, boundscheck=False, error_model="numpy", cache=True)
def _activate(code, z, a):
    """a = f(z) over one unit's row."""
    n = z.shape[0]
    if code == 0:
        for b in range(n):
            a[b] = _tanh(z[b])
    elif code == 1:
        for b in range(n):
            a[b] = max(z[b], np.float32(0.0))
    elif code == 2:
        for b in range(n):
            a[b] = z[b]
    elif code == 3:
        for b in range(n):
            # sigmoid(z) = (1 + tanh(z / 2)) / 2: no overflow, and vectorised
            a[b] = np.float32(0.5) + np.float32(0.5) * _tanh(np.float32(0.5) * z[b])
    elif code == 4:
        for b in range(n):
            a[b] = min(max(z[b], np.float32(-1.0)), np.float32(1.0))
    elif code == 5:
        for b in range(n):
            a[b] = z[b] / (np.float32(1.0) + abs(z[b]))
    elif code == 6:
        for b in range(n):
            # log(1 + e^z) = max(z, 0) + log1p(e^-|z|): no overflow for large z
            a[b] = max(z[b], np.float32(0.0)) + math.log1p(math.exp(-abs(z[b])))
    elif code == 7:
        for b in range(n):
            a[b] = z[b] if z[b] > np.float32(0.0) else math.expm1(z[b])
    else:
        for b in range(n):
            # z Phi(z), Phi the standard normal CDF (torch's exact gelu)
            a[b] = np.float32(0.5) * z[b] * (np.float32(1.0) + math.erf(z[b] * _INV_SQRT2))


@njit(fastmath=_FAST, boundscheck=False, error_model="numpy", cache=True)
def _times_slope(code, delta, z, a):
    """delta *= f'(z) over one unit's row, from z and a = f(z)."""
    n = delta.shape[0]
    if code == 0:
        for b in range(n):
            delta[b] *= np.float32(1.0) - a[b] * a[b]
    elif code == 1:
        for b in range(n):
            delta[b] = delta[b] if a[b] > np.float32(0.0) else np.float32(0.0)
    elif code == 3:
        for b in range(n):
            delta[b] *= a[b] * (np.float32(1.0) - a[b])
    elif code == 4:
        for b in range(n):
            inside = z[b] > np.float32(-1.0) and z[b] < np.float32(1.0)
            delta[b] = delta[b] if inside else np.float32(0.0)
    elif code == 5:
        for b in range(n):
            slope = np.float32(1.0) - abs(a[b])
            delta[b] *= slope * slope
    elif code == 6:
        for b in range(n):  # softplus' = sigmoid
            delta[b] *= np.float32(0.5) + np.float32(0.5) * _tanh(np.float32(0.5) * z[b])
    elif code == 7:
        for b in range(n):
            delta[b] = delta[b] if z[b] > np.float32(0.0) else delta[b] * (a[b] + np.float32(1.0))
    elif code == 8:
        for b in range(n):  # (z Phi(z))' = Phi(z) + z phi(z)
            x = z[b]
            cdf = np.float32(0.5) * (np.float32(1.0) + math.erf(x * _INV_SQRT2))
            delta[b] *= cdf + x * math.exp(np.float32(-0.5) * x * x) * _INV_SQRT_2PI


@njit(fastmath=_FAST, boundscheck=False, error_model="numpy", cache=True)
def _add_products(out, w, rows, count):
    """out[b] += sum_k w[k] * rows[k][b] for k < count, four rows per pass (one load and store of
    out per four rows)."""
    k = 0
    while k + 4 <= count:
        w0, w1, w2, w3 = w[k], w[k + 1], w[k + 2], w[k + 3]
        r0, r1, r2, r3 = rows[k], rows[k + 1], rows[k + 2], rows[k + 3]
        for b in range(out.shape[0]):
            out[b] += (w0 * r0[b] + w1 * r1[b]) + (w2 * r2[b] + w3 * r3[b])
        k += 4
    while k < count:
        wk, rk = w[k], rows[k]
        for b in range(out.shape[0]):
            out[b] += wk * rk[b]
        k += 1


@njit(fastmath=_FAST, boundscheck=False, error_model="numpy", cache=True)
def _add_products_twice(out, other, w, v, rows, count):
    """_add_products for two outputs at once (out with weights w, other with v): each pass
    loads four input rows once for eight products."""
    k = 0
    while k + 4 <= count:
        w0, w1, w2, w3 = w[k], w[k + 1], w[k + 2], w[k + 3]
        v0, v1, v2, v3 = v[k], v[k + 1], v[k + 2], v[k + 3]
        r0, r1, r2, r3 = rows[k], rows[k + 1], rows[k + 2], rows[k + 3]
        for b in range(out.shape[0]):
            x0, x1, x2, x3 = r0[b], r1[b], r2[b], r3[b]
            out[b] += (w0 * x0 + w1 * x1) + (w2 * x2 + w3 * x3)
            other[b] += (v0 * x0 + v1 * x1) + (v2 * x2 + v3 * x3)
        k += 4
    while k < count:
        wk, vk, rk = w[k], v[k], rows[k]
        for b in range(out.shape[0]):
            out[b] += wk * rk[b]
            other[b] += vk * rk[b]
        k += 1


@njit(fastmath=_FAST, boundscheck=False, error_model="numpy", cache=True)
def _dot_products(out, delta, rows, count):
    """out[k] = sum_b delta[b] * rows[k][b] for k < count, four rows per pass."""
    k = 0
    while k + 4 <= count:
        r0, r1, r2, r3 = rows[k], rows[k + 1], rows[k + 2], rows[k + 3]
        s0 = s1 = s2 = s3 = np.float32(0.0)
        for b in range(delta.shape[0]):
            d = delta[b]
            s0 += d * r0[b]
            s1 += d * r1[b]
            s2 += d * r2[b]
            s3 += d * r3[b]
        out[k], out[k + 1], out[k + 2], out[k + 3] = s0, s1, s2, s3
        k += 4
    while k < count:
        rk = rows[k]
        acc = np.float32(0.0)
        for b in range(delta.shape[0]):
            acc += delta[b] * rk[b]
        out[k] = acc
        k += 1


@njit(fastmath=_FAST, boundscheck=False, error_model="numpy", cache=True)
def _dot_products_twice(out, other, delta, epsilon, rows, count):
    """_dot_products for two deltas at once (into out and other), sharing each row's loads."""
    k = 0
    while k + 4 <= count:
        r0, r1, r2, r3 = rows[k], rows[k + 1], rows[k + 2], rows[k + 3]
        s0 = s1 = s2 = s3 = t0 = t1 = t2 = t3 = np.float32(0.0)
        for b in range(delta.shape[0]):
            d, e = delta[b], epsilon[b]
            x0, x1, x2, x3 = r0[b], r1[b], r2[b], r3[b]
            s0 += d * x0
            s1 += d * x1
            s2 += d * x2
            s3 += d * x3
            t0 += e * x0
            t1 += e * x1
            t2 += e * x2
            t3 += e * x3
        out[k], out[k + 1], out[k + 2], out[k + 3] = s0, s1, s2, s3
        other[k], other[k + 1], other[k + 2], other[k + 3] = t0, t1, t2, t3
        k += 4
    while k < count:
        rk = rows[k]
        s0 = t0 = np.float32(0.0)
        for b in range(delta.shape[0]):
            s0 += delta[b] * rk[b]
            t0 += epsilon[b] * rk[b]
        out[k], other[k] = s0, t0
        k += 1


def work_size(widths: tuple[int, ...], batch: int, dropout: bool) -> int:
    """Floats of scratch one seed needs for a minibatch of `batch` (the layout in _seed_step)."""
    columns = widths[0] + 1 + widths[-1]
    hidden = sum(widths[1:-1])
    return batch * (columns + (3 if dropout else 2) * hidden + widths[-1] + 2 + 2 * max(widths[1:]))


@njit(inline="always", boundscheck=False, error_model="numpy")
def _block(buffer, offsets, widths, layer, s):
    """Seed s's (fan_out, fan_in + 1) block of `layer` in a flat parameter buffer."""
    fan_in, fan_out = widths[layer], widths[layer + 1]
    size = fan_out * (fan_in + 1)
    at = offsets[layer] + s * size
    return buffer[at : at + size].reshape((fan_out, fan_in + 1))


@njit(fastmath=_FAST, boundscheck=False, error_model="numpy", cache=True)
def _seed_step(flat, grad, offsets, widths, table, order, l2, code, masks, work, s, want_loss):
    """Seed s's step on the samples table[order]: gradients into grad; its mean cross-entropy
    when want_loss (else 0).

    work holds, each (rows, n) feature-major: the minibatch transposed (inputs, a row of ones,
    one-hot labels), per hidden layer z, f(z) and with dropout f(z) * mask, the logits, two rows
    (the column max and sum), and two delta buffers the size of the widest layer."""
    n = order.shape[0]
    layers = widths.shape[0] - 1
    n_in = widths[0]
    classes = widths[layers]
    columns = table.shape[0]
    dropout = masks.shape[1] > 0
    per_unit = 3 if dropout else 2
    batch = work[: columns * n].reshape((columns, n))
    for f in range(columns):  # a vectorised gather per feature
        source, target = table[f], batch[f]
        for b in range(n):
            target[b] = source[order[b]]
    onehot = batch[n_in + 1 :]
    hidden_at = columns * n  # layer l's z at hidden_at + per_unit * n * (units before l)
    logits_at = hidden_at + per_unit * n * (widths[1 : layers].sum())
    # Forward; layer 0 reads the minibatch's input rows, layer l the previous (masked) f(z).
    h = batch
    unit = 0
    for layer in range(layers):
        fan_in, fan_out = widths[layer], widths[layer + 1]
        w = _block(flat, offsets, widths, layer, s)
        at = logits_at if layer == layers - 1 else hidden_at + per_unit * n * unit
        z = work[at : at + fan_out * n].reshape((fan_out, n))
        for o in range(fan_out):
            zo = z[o]
            bias = w[o, fan_in]
            for b in range(n):
                zo[b] = bias
        for o in range(0, fan_out - 1, 2):
            _add_products_twice(z[o], z[o + 1], w[o], w[o + 1], h, fan_in)
        if fan_out % 2:
            _add_products(z[fan_out - 1], w[fan_out - 1], h, fan_in)
        if layer == layers - 1:
            break
        a = work[at + fan_out * n : at + 2 * fan_out * n].reshape((fan_out, n))
        for o in range(fan_out):
            _activate(code, z[o], a[o])
        h = a
        if dropout:
            h = work[at + 2 * fan_out * n : at + 3 * fan_out * n].reshape((fan_out, n))
            for o in range(fan_out):
                ho, ao, mo = h[o], a[o], masks[s, unit + o]
                for b in range(n):
                    ho[b] = ao[b] * mo[b]
        unit += fan_out
    # Softmax cross-entropy; the logits become the output delta (softmax - onehot) / n.
    logits = work[logits_at : logits_at + classes * n].reshape((classes, n))
    top = work[logits_at + classes * n : logits_at + (classes + 1) * n]
    total = work[logits_at + (classes + 1) * n : logits_at + (classes + 2) * n]
    for b in range(n):
        top[b] = logits[0, b]
    for c in range(1, classes):
        lc = logits[c]
        for b in range(n):
            top[b] = max(top[b], lc[b])
    for b in range(n):
        total[b] = np.float32(0.0)
    loss = 0.0
    for c in range(classes):
        lc, yc = logits[c], onehot[c]
        picked = np.float32(0.0)
        for b in range(n):
            shifted = lc[b] - top[b]
            picked += shifted * yc[b]
            e = _exp(shifted)
            lc[b] = e
            total[b] += e
        loss -= picked
    if want_loss:  # a scalar log per sample: only for the steps whose loss is reported
        for b in range(n):
            loss += math.log(total[b])
    inv_n = np.float32(1.0 / n)
    for c in range(classes):
        lc, yc = logits[c], onehot[c]
        for b in range(n):
            lc[b] = (lc[b] / total[b] - yc[b]) * inv_n
    # Backward; delta alternates between the two spare buffers.
    widest = widths[1:].max()
    spare_at = logits_at + (classes + 2) * n
    decay = np.float32(2.0 * l2)
    delta = logits
    for layer in range(layers - 1, -1, -1):
        fan_in, fan_out = widths[layer], widths[layer + 1]
        w = _block(flat, offsets, widths, layer, s)
        g = _block(grad, offsets, widths, layer, s)
        if layer == 0:
            h = batch
        else:
            unit -= fan_in
            at = hidden_at + per_unit * n * unit
            h = work[at + (2 if dropout else 1) * fan_in * n : at + (3 if dropout else 2) * fan_in * n].reshape((fan_in, n))
        for o in range(0, fan_out - 1, 2):
            _dot_products_twice(g[o], g[o + 1], delta[o], delta[o + 1], h, fan_in)
        if fan_out % 2:
            _dot_products(g[fan_out - 1], delta[fan_out - 1], h, fan_in)
        for o in range(fan_out):
            go = g[o]
            for i in range(fan_in):
                go[i] += decay * w[o, i]
            acc = np.float32(0.0)
            do = delta[o]
            for b in range(n):
                acc += do[b]
            go[fan_in] = acc
        if layer == 0:
            break
        start = spare_at + (layer % 2) * widest * n
        previous = work[start : start + fan_in * n].reshape((fan_in, n))
        z = work[at : at + fan_in * n].reshape((fan_in, n))
        a = work[at + fan_in * n : at + 2 * fan_in * n].reshape((fan_in, n))
        for i in range(fan_in):
            pi = previous[i]
            for b in range(n):
                pi[b] = np.float32(0.0)
        for i in range(0, fan_in - 1, 2):
            _add_products_twice(previous[i], previous[i + 1], w[:, i], w[:, i + 1], delta, fan_out)
        if fan_in % 2:
            _add_products(previous[fan_in - 1], w[:, fan_in - 1], delta, fan_out)
        for i in range(fan_in):
            pi = previous[i]
            if code != 2:
                _times_slope(code, pi, z[i], a[i])
            if dropout:
                mi = masks[s, unit + i]
                for b in range(n):
                    pi[b] *= mi[b]
        delta = previous
    return loss / n if want_loss else 0.0


MAX_THREADS = numba.config.NUMBA_NUM_THREADS  # numba's pool


def threads() -> int:
    """The threads train_step uses when called from this thread."""
    return numba.get_num_threads()


def set_threads(count: int) -> None:
    """The threads train_step spreads the seeds over, in the calling thread (numba keeps the
    count per thread); at most numba's pool size."""
    numba.set_num_threads(max(1, min(count, MAX_THREADS)))


@njit(nogil=True, fastmath=_FAST, boundscheck=False, error_model="numpy", cache=True, parallel=True)
def train_step(flat, grad, offsets, widths, table, perms, start, stop, l2, code, masks, work, losses, want_loss):
    """Every seed's step on its samples perms[s, start:stop], the seeds spread over numba's
    threads (set_threads; each seed's work is independent, so the result does not depend on the
    split). `table` is the training set feature-major; gradients go to grad, each seed's mean
    cross-entropy to losses when want_loss; work and masks as backend_cpu.py sizes them."""
    per_seed = work.shape[0] // perms.shape[0]
    for s in prange(perms.shape[0]):
        losses[s] = _seed_step(flat, grad, offsets, widths, table, perms[s, start:stop], l2, code, masks,
                               work[s * per_seed : (s + 1) * per_seed], s, want_loss)


# -- the optimiser, and whole runs of steps ---------------------------------------------------
#
# train_steps runs many steps, each seed's optimiser update included, in one parallel region;
# each seed's steps depend only on that seed, so the threads need no barrier between steps.
#
# The updates below are plain IEEE arithmetic (no fastmath: no contraction, no reassociation),
# so an element's update is the same float whichever loop, vectorised or not, computes it: a
# seed updated inside train_steps equals the same seed updated by adam_step on the whole buffer.

OPTIMIZER_CODES = {"adam": 0, "sgd": 1}


@njit(boundscheck=False, cache=True)
def _adam_update(param, grad, exp_avg, exp_avg_sq, lr, beta1, beta2, eps, step):
    """Adam (Kingma & Ba, as torch.optim.Adam without weight decay) over one stretch of
    parameters; step counts from 1. The scalar factors are float64, as in torch's fused Adam."""
    bias1 = 1.0 - beta1**step
    bias2_sqrt = math.sqrt(1.0 - beta2**step)
    step_size = np.float32(lr / bias1)
    keep1, keep2 = np.float32(beta1), np.float32(beta2)
    take1, take2 = np.float32(1.0 - beta1), np.float32(1.0 - beta2)
    scale, eps32 = np.float32(1.0 / bias2_sqrt), np.float32(eps)
    for i in range(param.shape[0]):
        g = grad[i]
        m = keep1 * exp_avg[i] + take1 * g
        v = keep2 * exp_avg_sq[i] + take2 * (g * g)
        exp_avg[i] = m
        exp_avg_sq[i] = v
        param[i] -= step_size * (m / (math.sqrt(v) * scale + eps32))


@njit(boundscheck=False, cache=True)
def _sgd_update(param, grad, lr):
    rate = np.float32(lr)
    for i in range(param.shape[0]):
        param[i] -= rate * grad[i]


@njit(nogil=True, boundscheck=False, cache=True)
def adam_step(param, grad, exp_avg, exp_avg_sq, lr, beta1, beta2, eps, step):
    """One Adam update of a whole flat buffer (the optimiser's step after train_step)."""
    _adam_update(param, grad, exp_avg, exp_avg_sq, lr, beta1, beta2, eps, step)


@njit(nogil=True, boundscheck=False, cache=True)
def sgd_step(param, grad, lr):
    _sgd_update(param, grad, lr)


@njit(nogil=True, fastmath=_FAST, boundscheck=False, error_model="numpy", cache=True, parallel=True)
def train_steps(flat, grad, exp_avg, exp_avg_sq, offsets, widths, table, perms, first, stop, batch, l2, code,
                optimizer, lr, beta1, beta2, eps, step_count, work, losses):
    """Steps first..stop-1 of the epoch (step k trains on perms[s, k * batch : (k + 1) * batch]),
    each followed by the optimiser's update of that seed (optimizer: OPTIMIZER_CODES; Adam's
    k-th update here has step number step_count + k - first + 1). Every seed's cross-entropy of
    the epoch's last step lands in losses when that step is among them. No dropout."""
    seeds = perms.shape[0]
    n_train = perms.shape[1]
    last = (n_train + batch - 1) // batch - 1
    per_seed = work.shape[0] // seeds
    layers = widths.shape[0] - 1
    no_masks = np.zeros((seeds, 0, 0), np.float32)
    for s in prange(seeds):
        mine = work[s * per_seed : (s + 1) * per_seed]
        for k in range(first, stop):
            begin = k * batch
            end = min(begin + batch, n_train)
            loss = _seed_step(flat, grad, offsets, widths, table, perms[s, begin:end], l2, code, no_masks, mine, s, k == last)
            if k == last:
                losses[s] = loss
            for layer in range(layers):
                size = widths[layer + 1] * (widths[layer] + 1)
                at = offsets[layer] + s * size
                if optimizer == 0:
                    _adam_update(flat[at : at + size], grad[at : at + size], exp_avg[at : at + size],
                                 exp_avg_sq[at : at + size], lr, beta1, beta2, eps, step_count + k - first + 1)
                else:
                    _sgd_update(flat[at : at + size], grad[at : at + size], lr)
