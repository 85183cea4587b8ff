"""Pooling, activations, normalisation, dropout, softmax family, dense and SE against PyTorch."""

from __future__ import annotations

import numpy as np
import pytest

import mnnkit.nn as mnn
from tests.conftest import TOL, close

torch = pytest.importorskip("torch", reason="torch is the test oracle for mnnkit.nn (pip install torch, CPU build)")
F = torch.nn.functional
torch.set_num_threads(1)

DTYPES = [np.float32, np.float64]
TORCH_MODE = {"zeros": "constant", "reflect": "reflect", "replicate": "replicate", "circular": "circular"}


def t(a, grad=True):
    return torch.tensor(a, requires_grad=grad)


def rand(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


def torch_pad(x, padding, mode):
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    return F.pad(x, (pw, pw, ph, ph), mode=TORCH_MODE[mode])


POOL_CASES = [
    # kernel, stride, padding, dilation, padding_mode
    (2, None, 0, 1, None),
    (3, 2, 1, 1, None),
    ((3, 2), (1, 2), (1, 0), (2, 1), None),
    (3, 1, 1, 1, "reflect"),
    (2, 2, (1, 2), 1, "zeros"),
    ((2, 3), 2, 1, 1, "replicate"),
    (3, 3, 2, 1, "circular"),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("index", range(len(POOL_CASES)))
def test_max_pool_matches_torch(dtype, index):
    kernel, stride, padding, dilation, mode = POOL_CASES[index]
    rng = np.random.default_rng(index)
    x = rand(rng, (2, 3, 9, 8), dtype)
    y = mnn.max_pool2d(x, kernel, stride, padding, dilation, mode)
    tx = t(x)
    if mode is None:
        ty = F.max_pool2d(tx, kernel, stride, padding, dilation)
    else:
        ty = F.max_pool2d(torch_pad(tx, padding, mode), kernel, stride, 0, dilation)
    close(y, ty, dtype, "forward")
    g = rand(rng, y.shape, dtype)
    ty.backward(torch.tensor(g))
    close(mnn.max_pool2d_backward(g, x, kernel, stride, padding, dilation, mode), tx.grad, dtype, "backward")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("index", [0, 1, 3, 4, 5, 6])
def test_avg_pool_matches_torch(dtype, count_include_pad, index):
    kernel, stride, padding, _, mode = POOL_CASES[index]
    rng = np.random.default_rng(10 + index)
    x = rand(rng, (2, 3, 9, 8), dtype)
    y = mnn.avg_pool2d(x, kernel, stride, padding, mode, count_include_pad)
    tx = t(x)
    if mode is None:
        ty = F.avg_pool2d(tx, kernel, stride, padding, count_include_pad=count_include_pad)
    else:
        ty = F.avg_pool2d(torch_pad(tx, padding, mode), kernel, stride, 0)
    close(y, ty, dtype, "forward")
    g = rand(rng, y.shape, dtype)
    ty.backward(torch.tensor(g))
    close(mnn.avg_pool2d_backward(g, x, kernel, stride, padding, mode, count_include_pad), tx.grad, dtype, "backward")


@pytest.mark.parametrize("dtype", DTYPES)
def test_global_avg_pool_matches_torch(dtype):
    rng = np.random.default_rng(20)
    x = rand(rng, (3, 4, 5, 7), dtype)
    tx = t(x)
    ty = F.adaptive_avg_pool2d(tx, 1)
    close(mnn.global_avg_pool2d(x, keepdims=True), ty, dtype)
    close(mnn.global_avg_pool2d(x), ty[:, :, 0, 0], dtype)
    g = rand(rng, (3, 4), dtype)
    ty.backward(torch.tensor(g)[:, :, None, None])
    close(mnn.global_avg_pool2d_backward(g, x), tx.grad, dtype)


ACTIVATIONS = [
    ("relu", {}, lambda x: F.relu(x)),
    ("leaky_relu", {"negative_slope": 0.2}, lambda x: F.leaky_relu(x, 0.2)),
    ("elu", {"alpha": 0.7}, lambda x: F.elu(x, 0.7)),
    ("softplus", {"beta": 2.0, "threshold": 3.0}, lambda x: F.softplus(x, 2.0, 3.0)),
    ("sigmoid", {}, torch.sigmoid),
    ("tanh", {}, torch.tanh),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("name", "kw", "reference"), ACTIVATIONS, ids=[a[0] for a in ACTIVATIONS])
def test_activations_match_torch(dtype, name, kw, reference):
    rng = np.random.default_rng(30)
    x = (rng.standard_normal((2, 3, 4, 5)) * 4).astype(dtype)
    x[0, 0, 0, :3] = [0.0, 40.0, -40.0]  # a kink and both tails
    x0 = x.copy()
    tx = t(x)
    ty = reference(tx)
    close(getattr(mnn, name)(x, **kw), ty, dtype, "forward")
    g = rand(rng, x.shape, dtype)
    ty.backward(torch.tensor(g))
    close(getattr(mnn, f"{name}_backward")(g, x, **kw), tx.grad, dtype, "backward")
    np.testing.assert_array_equal(x, x0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("channels", [1, 4])
@pytest.mark.parametrize("shape", [(3, 4, 5, 2), (6, 4)])
def test_prelu_matches_torch(dtype, channels, shape):
    rng = np.random.default_rng(31)
    x = rand(rng, shape, dtype)
    w = rng.uniform(0.05, 0.5, channels).astype(dtype)
    tx, tw = t(x), t(w)
    ty = F.prelu(tx, tw)
    close(mnn.prelu(x, w), ty, dtype)
    g = rand(rng, shape, dtype)
    ty.backward(torch.tensor(g))
    gx, gw = mnn.prelu_backward(g, x, w)
    close(gx, tx.grad, dtype)
    close(gw, tw.grad, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(4, 3, 5, 6), (7, 5)])
def test_batch_norm_train_and_eval_match_torch(dtype, shape):
    rng = np.random.default_rng(40)
    x = (rand(rng, shape, dtype) * 3 + 1).astype(dtype)
    c = shape[1]
    w, b = rng.uniform(0.5, 2, c).astype(dtype), rand(rng, c, dtype)
    rm, rv = rand(rng, c, dtype), rng.uniform(0.5, 2, c).astype(dtype)
    trm, trv = torch.tensor(rm), torch.tensor(rv)
    x0 = x.copy()
    tx, tw, tb = t(x), t(w), t(b)
    ty = F.batch_norm(tx, trm, trv, tw, tb, training=True, momentum=0.3, eps=1e-3)
    y = mnn.batch_norm(x, w, b, rm, rv, training=True, momentum=0.3, eps=1e-3)
    close(y, ty, dtype, "train forward")
    close(rm, trm, dtype, "running mean")
    close(rv, trv, dtype, "running var")
    np.testing.assert_array_equal(x, x0)
    g = rand(rng, shape, dtype)
    ty.backward(torch.tensor(g))
    grads = mnn.batch_norm_backward(g, x, w, training=True, eps=1e-3)
    for ours, theirs in zip(grads, (tx.grad, tw.grad, tb.grad), strict=True):
        close(ours, theirs, dtype, "train backward")
    tx, tw, tb = t(x), t(w), t(b)
    ty = F.batch_norm(tx, trm, trv, tw, tb, training=False, eps=1e-3)
    close(mnn.batch_norm(x, w, b, rm, rv, training=False, eps=1e-3), ty, dtype, "eval forward")
    ty.backward(torch.tensor(g))
    grads = mnn.batch_norm_backward(g, x, w, rm, rv, training=False, eps=1e-3)
    for ours, theirs in zip(grads, (tx.grad, tw.grad, tb.grad), strict=True):
        close(ours, theirs, dtype, "eval backward")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", [1, 2, 3, 4])
def test_local_response_norm_matches_torch(dtype, size):
    rng = np.random.default_rng(41)
    x = rand(rng, (2, 6, 3, 4), dtype) * 3
    tx = t(x)
    ty = F.local_response_norm(tx, size, alpha=0.5, beta=0.75, k=2.0)
    close(mnn.local_response_norm(x, size, 0.5, 0.75, 2.0), ty, dtype)
    g = rand(rng, x.shape, dtype)
    ty.backward(torch.tensor(g))
    close(mnn.local_response_norm_backward(g, x, size, 0.5, 0.75, 2.0), tx.grad, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout_scaling_matches_torch(dtype):
    x = np.random.default_rng(42).uniform(1, 2, (50, 40)).astype(dtype)
    y, mask = mnn.dropout(x, 0.3, rng=1, return_mask=True)
    ty = F.dropout(torch.tensor(x), 0.3, training=True)
    kept = ty.numpy() != 0
    # torch scales kept values by 1 / (1 - p) as we do; the masks differ (different generators)
    close(y[mask], x[mask] / dtype(0.7), dtype)
    close(ty.numpy()[kept], x[kept] / dtype(0.7), dtype)
    assert np.all(y[~mask] == 0)
    close(mnn.dropout(x, 0.3, training=False), F.dropout(torch.tensor(x), 0.3, training=False), dtype)
    # with torch's mask (x is positive, so its kept entries are its non-zeros) forward and backward agree
    tx = torch.tensor(x, requires_grad=True)
    ty = F.dropout(tx, 0.3, training=True)
    torch_mask = ty.detach().numpy() != 0
    close(mnn.dropout(x, 0.3, mask=torch_mask), ty, dtype)
    g = np.random.default_rng(43).standard_normal(x.shape).astype(dtype)
    ty.backward(torch.tensor(g))
    close(mnn.dropout_backward(g, torch_mask, 0.3), tx.grad, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_softmax_log_softmax_match_torch(dtype, axis):
    rng = np.random.default_rng(50)
    x = rand(rng, (3, 4, 5), dtype) * 5
    for name, ref in (("softmax", F.softmax), ("log_softmax", F.log_softmax)):
        tx = t(x)
        ty = ref(tx, dim=axis)
        close(getattr(mnn, name)(x, axis), ty, dtype, name)
        g = rand(rng, x.shape, dtype)
        ty.backward(torch.tensor(g))
        close(getattr(mnn, f"{name}_backward")(g, x, axis), tx.grad, dtype, name)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("temperature", "log"), [(1.0, False), (0.1, True), (1000.0, True)])
def test_dual_softmax_matches_camoe(dtype, temperature, log):
    rng = np.random.default_rng(51)
    sim = rand(rng, (5, 6), dtype)
    ts = t(sim)
    logits = ts * F.softmax(ts / temperature, dim=0) * len(ts)  # CAMoE's DSL, then its row softmax
    ty = F.log_softmax(logits, dim=-1) if log else F.softmax(logits, dim=-1)
    close(mnn.dual_softmax(sim, temperature, log), ty, dtype)
    g = rand(rng, sim.shape, dtype)
    ty.backward(torch.tensor(g))
    close(mnn.dual_softmax_backward(g, sim, temperature, log), ts.grad, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hard", [False, True])
@pytest.mark.parametrize("axis", [-1, 0])
def test_gumbel_softmax_matches_torch(dtype, hard, axis):
    rng = np.random.default_rng(52)
    logits = rand(rng, (4, 6), dtype)
    tl = t(logits)
    torch.manual_seed(7)
    noise = (-torch.empty_like(tl).exponential_().log()).detach().numpy()  # torch's own Gumbel draw
    torch.manual_seed(7)
    ty = F.gumbel_softmax(tl, tau=0.5, hard=hard, dim=axis)
    y = mnn.gumbel_softmax(logits, 0.5, hard, axis, noise=noise)
    close(y, ty, dtype)
    g = rand(rng, logits.shape, dtype)
    ty.backward(torch.tensor(g))
    close(mnn.gumbel_softmax_backward(g, logits, noise, 0.5, axis), tl.grad, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_linear_and_cross_entropy_match_torch(dtype):
    rng = np.random.default_rng(53)
    x, w, b = rand(rng, (6, 5), dtype), rand(rng, (3, 5), dtype), rand(rng, 3, dtype)
    target = np.array([0, 2, 1, 1, 0, 2])
    tx, tw, tb = t(x), t(w), t(b)
    logits = F.linear(tx, tw, tb)
    close(mnn.linear(x, w, b), logits, dtype)
    for reduction in ("mean", "sum"):
        tl = t(logits.detach().numpy())
        loss = F.cross_entropy(tl, torch.tensor(target), reduction=reduction)
        assert abs(mnn.cross_entropy(tl.detach().numpy(), target, reduction) - loss.item()) < TOL[dtype]
        loss.backward()
        close(mnn.cross_entropy_backward(tl.detach().numpy(), target, reduction), tl.grad, dtype)
    g = rand(rng, (6, 3), dtype)
    logits.backward(torch.tensor(g))
    for ours, theirs in zip(mnn.linear_backward(g, x, w), (tx.grad, tw.grad, tb.grad), strict=True):
        close(ours, theirs, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_squeeze_excitation_matches_torch(dtype):
    rng = np.random.default_rng(54)
    x = rand(rng, (2, 8, 5, 4), dtype)
    w1, b1 = rand(rng, (2, 8), dtype), rand(rng, 2, dtype)
    w2, b2 = rand(rng, (8, 2), dtype), rand(rng, 8, dtype)
    tensors = [t(a) for a in (x, w1, b1, w2, b2)]
    tx, tw1, tb1, tw2, tb2 = tensors
    gate = torch.sigmoid(F.linear(F.relu(F.linear(tx.mean(dim=(2, 3)), tw1, tb1)), tw2, tb2))
    ty = tx * gate[:, :, None, None]
    close(mnn.squeeze_excitation(x, w1, b1, w2, b2), ty, dtype)
    g = rand(rng, x.shape, dtype)
    ty.backward(torch.tensor(g))
    grads = mnn.squeeze_excitation_backward(g, x, w1, b1, w2, b2)
    for ours, theirs in zip(grads, tensors, strict=True):
        close(ours, theirs.grad, dtype)
