import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from ibtui.config import ACTIVATIONS, ModelConfig
from ibtui.errors import ConfigError
from ibtui.engine.mlp import ACTIVATION_FUNCTIONS, init_weights
from ibtui.engine.model import stacked_mlp as StackedMLP
from ibtui.engine.optim import FlatAdam, FlatSGD


def autograd_grads(model, x, y, l2):
    """The same loss differentiated by autograd, per seed: mean CE + l2 * sum(W^2)."""
    flat = model.flat.clone().requires_grad_()
    layers = model.weights_and_biases(flat)
    # The reference differentiates torch's own tanh (ibtui computes it through sigmoid, in place).
    activation = torch.tanh if model.activation is ACTIVATION_FUNCTIONS["tanh"] else model.activation
    h = x
    for w, b in layers[:-1]:
        h = activation(torch.baddbmm(b, h, w))
    logits = torch.baddbmm(layers[-1][1], h, layers[-1][0])
    ce = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="none")
    loss = ce.view(y.shape).mean(1).sum() + l2 * sum((w * w).sum() for w, _ in layers)
    loss.backward()
    return flat.grad, ce.view(y.shape).mean(1)


def step_on(model, x, y, l2, want_loss=True):
    """One train_step on per-seed minibatches x (S, B, in), y (S, B), through bind_data/shuffle."""
    s, b, _ = x.shape
    model.bind_data(x.reshape(s * b, -1), y.reshape(-1))
    model.shuffle(torch.arange(s * b).view(s, b))
    return model.train_step(0, b, l2, want_loss=want_loss)


STEPS = [(backend, activation) for backend in ("compiled", "torch") for activation in ACTIVATIONS]


@pytest.mark.parametrize(("backend", "activation"), STEPS)
@pytest.mark.parametrize("l2", [0.0, 0.01])
def test_hand_written_backward_equals_autograd(activation, l2, backend):
    torch.manual_seed(0)
    model = StackedMLP(5, 3, ModelConfig(hidden=(7, 4), activation=activation), seeds=[0, 1, 2], device=torch.device("cpu"), backend=backend)
    x = torch.randn(3, 33, 5, dtype=torch.float32) * 2
    y = torch.randint(0, 3, (3, 33))
    loss = step_on(model, x, y, l2)
    expected_grad, expected_loss = autograd_grads(model, x, y, l2)
    torch.testing.assert_close(model.flat_grad, expected_grad, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(loss, expected_loss)


@pytest.mark.parametrize("backend", ["compiled", "torch"])
def test_dropout_masks_the_gradient_consistently(backend):
    model = StackedMLP(4, 2, ModelConfig(hidden=(50,), activation="relu", dropout=0.5), seeds=[0], device=torch.device("cpu"), backend=backend)
    # One sample, tanh-like inputs kept away from relu's dead zone: a unit gets no gradient iff dropped.
    x, y = torch.ones(1, 1, 4), torch.zeros(1, 1, dtype=torch.int64)
    with torch.no_grad():
        model.biases[0].fill_(1.0)
    step_on(model, x, y, 0.0, want_loss=False)
    first_layer_grad = model.weight_grads[0][0]
    dropped_units = (first_layer_grad.abs().sum(0) == 0).sum().item()
    assert 12 < dropped_units < 38  # about half of 50 units are dropped


def test_init_is_per_seed_and_truncated():
    a = init_weights((12, 10, 2), seed=3, scheme="truncated_normal")
    b = init_weights((12, 10, 2), seed=3, scheme="truncated_normal")
    c = init_weights((12, 10, 2), seed=4, scheme="truncated_normal")
    assert torch.equal(a[0][0], b[0][0]) and not torch.equal(a[0][0], c[0][0])
    std = 1 / 10**0.5
    assert a[0][0].abs().max() <= 2 * std and torch.all(a[0][1] == 0)
    stacked = StackedMLP(12, 2, ModelConfig(hidden=(10,)), seeds=[4, 3], device=torch.device("cpu"))
    assert torch.equal(stacked.weights[0][1], a[0][0]) and torch.equal(stacked.weights[0][0], c[0][0])


def test_flat_adam_equals_torch_adam():
    torch.manual_seed(0)
    p = torch.randn(50)
    ref = p.clone().requires_grad_()
    grad = torch.zeros(50)
    mine = FlatAdam(p, grad, lr=1e-2)
    theirs = torch.optim.Adam([ref], lr=1e-2)
    for _ in range(20):
        g = torch.randn(50)
        grad.copy_(g)
        mine.step()
        ref.grad = g.clone()
        theirs.step()
    torch.testing.assert_close(p, ref.detach(), rtol=1e-6, atol=1e-7)


def test_fast_tanh_is_tanh():
    z = torch.linspace(-12, 12, 100_001)
    torch.testing.assert_close(ACTIVATION_FUNCTIONS["tanh"](z), torch.tanh(z), rtol=0, atol=3e-7)


def test_every_activation_is_registered():
    assert set(ACTIVATION_FUNCTIONS) == set(ACTIVATIONS)


@pytest.mark.parametrize("backend", ["compiled", "torch"])
def test_dropout_gradient_equals_autograd_with_the_same_masks(backend):
    torch.manual_seed(0)
    s, b, p = 2, 17, 0.3
    model = StackedMLP(5, 3, ModelConfig(hidden=(6, 4), activation="tanh", dropout=p), seeds=[0, 1], device=torch.device("cpu"), backend=backend)
    x, y = torch.randn(s, b, 5), torch.randint(0, 3, (s, b))
    states = [g.get_state() for g in model.generators]
    step_on(model, x, y, 0.0)
    # The step draws each seed's (hidden units, B) masks from that seed's generator.
    drawn = torch.stack([torch.empty(10, b).bernoulli_(1 - p, generator=torch.Generator().set_state(state)).div_(1 - p)
                         for state in states])
    masks = [drawn[:, :6].transpose(1, 2), drawn[:, 6:].transpose(1, 2)]
    flat = model.flat.clone().requires_grad_()
    layers = model.weights_and_biases(flat)
    h = x
    for (w, bias), mask in zip(layers[:-1], masks):
        h = torch.tanh(torch.baddbmm(bias, h, w)) * mask
    logits = torch.baddbmm(layers[-1][1], h, layers[-1][0])
    ce = torch.nn.functional.cross_entropy(logits.reshape(-1, 3), y.reshape(-1), reduction="none")
    ce.view(s, b).mean(1).sum().backward()
    torch.testing.assert_close(model.flat_grad, flat.grad, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_the_cpu_trains_every_activation_compiled(activation):
    cpu = torch.device("cpu")
    assert StackedMLP(4, 2, ModelConfig(hidden=(3,), activation=activation), seeds=[0], device=cpu).backend == "compiled"
    with pytest.raises(ConfigError, match="backend"):
        StackedMLP(4, 2, ModelConfig(hidden=(3,)), seeds=[0], device=cpu, backend="numpy")


def test_training_falls_back_to_torch_with_one_warning_where_numba_cannot_load(monkeypatch):
    import warnings

    monkeypatch.setitem(sys.modules, "ibtui.engine.step_cpu", None)  # import raises ImportError
    monkeypatch.delattr(sys.modules["ibtui.engine"], "step_cpu", raising=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = StackedMLP(4, 2, ModelConfig(hidden=(3,), activation="tanh"), seeds=[0], device=torch.device("cpu"))
    assert [str(w.message) for w in caught if w.category is RuntimeWarning and "compiled training step is unavailable" in str(w.message)]
    assert len([w for w in caught if w.category is RuntimeWarning]) == 1
    assert model.backend == "torch"


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_the_compiled_step_does_not_depend_on_the_thread_count(threads):
    torch.manual_seed(0)
    x, y = torch.randn(5, 40, 6), torch.randint(0, 3, (5, 40))
    grads = []
    for count in (1, threads):
        model = StackedMLP(6, 3, ModelConfig(hidden=(9, 4), activation="tanh"), seeds=range(5), device=torch.device("cpu"), backend="compiled")
        model.threads = count
        step_on(model, x, y, 0.01)
        grads.append(model.flat_grad.clone())
    assert torch.equal(grads[0], grads[1])


def test_the_compiled_tanh_is_tanh():
    numba = pytest.importorskip("numba")
    from ibtui.engine import step_cpu

    @numba.njit(error_model="numpy")
    def tanh_all(z):
        out = np.empty_like(z)
        for i in range(z.shape[0]):
            out[i] = step_cpu._tanh(z[i])
        return out

    z = np.concatenate([np.linspace(-12, 12, 200_001), np.linspace(-1e-3, 1e-3, 2001)]).astype(np.float32)
    got = tanh_all(z).astype(np.float64)
    exact = np.tanh(z.astype(np.float64))
    assert np.abs(got - exact).max() < 4e-7
    small = np.abs(z) < 0.01  # relative accuracy where tanh(z) ~ z
    assert (np.abs(got - exact)[small] <= 3e-7 * np.abs(exact[small])).all()


def test_compiled_sgd_is_sgd():
    torch.manual_seed(0)
    p, grad = torch.randn(40), torch.randn(40)
    expected = p - 0.05 * grad
    FlatSGD(p, grad, lr=0.05).step()
    torch.testing.assert_close(p, expected, rtol=0, atol=1e-7)


def _steps_one_by_one(model, optimizer, first, stop, batch, l2):
    n = model._epoch.shape[1]
    loss = None
    for k in range(first, stop):
        start = k * batch
        loss = model.train_step(start, min(start + batch, n), l2, want_loss=k == -(-n // batch) - 1)
        optimizer.step()
    return loss


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
@pytest.mark.parametrize("threads", [1, 2])
def test_many_steps_in_one_call_equal_the_steps_one_by_one(optimizer, threads):
    """train_steps (the compiled step's loop with the optimiser inside) gives bitwise the numbers
    of train_step + optimizer.step: the trainer mixes the two (epochs with gradient statistics go
    step by step), so a run must not depend on which one ran."""
    torch.manual_seed(0)
    x, y = torch.randn(90, 6), torch.randint(0, 3, (90,))
    perms = torch.stack([torch.randperm(90) for _ in range(3)])
    results = []
    for many in (False, True):
        model = StackedMLP(6, 3, ModelConfig(hidden=(9, 4), activation="tanh"), seeds=[0, 1, 2], device=torch.device("cpu"), backend="compiled")
        model.threads = threads
        model.bind_data(x, y)
        make = FlatAdam if optimizer == "adam" else FlatSGD
        opt = make(model.flat, model.flat_grad, lr=0.01)
        losses = []
        for epoch in range(2):
            model.shuffle(perms.roll(epoch, 1))
            # batch 32: steps of 32, 32 and 26 samples; the first epoch in two calls (1 + 2 steps)
            for first, stop in ((0, 1), (1, 3)) if epoch == 0 else ((0, 3),):
                loss = model.train_steps(first, stop, 32, 0.01, opt) if many else _steps_one_by_one(model, opt, first, stop, 32, 0.01)
                losses.append(loss)
        assert (losses[0] is None) and losses[1] is not None
        results.append((model.flat.clone(), torch.stack(losses[1:]), opt.step_count if optimizer == "adam" else 0))
    assert torch.equal(results[0][0], results[1][0])
    assert torch.equal(results[0][1], results[1][1])
    assert results[0][2] == results[1][2]


def test_many_steps_refuse_dropout():
    model = StackedMLP(4, 2, ModelConfig(hidden=(5,), dropout=0.5), seeds=[0], device=torch.device("cpu"), backend="compiled")
    assert not model.trains_many_steps
    with pytest.raises(RuntimeError, match="dropout"):
        model.train_steps(0, 1, 8, 0.0, FlatSGD(model.flat, model.flat_grad, 0.1))


def test_the_compiled_step_leaves_torch_on_its_thread_count():
    """numba's OpenMP layer shares torch's runtime, and starting it (once a process, so in a fresh
    one here) set torch's thread count to numba's: every optimiser step then woke a second thread."""
    pytest.importorskip("numba")
    code = (
        "import torch; from ibtui.config import ModelConfig; from ibtui.engine.model import stacked_mlp as StackedMLP\n"
        "torch.set_num_threads(1)\n"
        "model = StackedMLP(6, 3, ModelConfig(hidden=(9,)), seeds=range(4), device=torch.device('cpu'), backend='compiled')\n"
        "model.threads = 2\n"
        "model.bind_data(torch.randn(80, 6), torch.randint(0, 3, (80,)))\n"
        "model.shuffle(torch.arange(80).repeat(4, 1))\n"
        "model.train_step(0, 20, 0.0, want_loss=False)\n"
        "print(torch.get_num_threads())\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env={**os.environ, "NUMBA_NUM_THREADS": "2"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-1] == "1"
