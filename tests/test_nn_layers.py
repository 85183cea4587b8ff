"""Layer classes, training modes, optimisers and initialisers against PyTorch."""

from __future__ import annotations

import numpy as np
import pytest

import mnnkit.nn as mnn
from tests.conftest import TOL, close

torch = pytest.importorskip("torch", reason="torch is the test oracle for mnnkit.nn (pip install torch, CPU build)")
F = torch.nn.functional
torch.set_num_threads(1)

DTYPES = [np.float32, np.float64]


def torch_params(model):
    return {name: torch.tensor(p.data, requires_grad=True) for name, p in model.named_parameters()}


def check_grads(model, params, dtype):
    for name, p in model.named_parameters():
        close(p.grad, params[name].grad, dtype, name)


def classifier(dtype, rng):
    return mnn.Sequential(
        mnn.Conv2d(3, 8, 3, padding=1, padding_mode="reflect", rng=rng, dtype=dtype),
        mnn.BatchNorm2d(8, momentum=0.2, dtype=dtype),
        mnn.PReLU(8, dtype=dtype),
        mnn.MaxPool2d(2),
        mnn.Conv2d(8, 8, 3, padding=1, groups=2, init="glorot_normal", rng=rng, dtype=dtype),
        mnn.ChannelShuffle(2),
        mnn.SqueezeExcitation(8, 4, rng=rng, dtype=dtype),
        mnn.ELU(),
        mnn.Dropout(0.3, rng=rng),
        mnn.GlobalAvgPool2d(),
        mnn.Linear(8, 3, rng=rng, dtype=dtype),
    )


def classifier_torch(x, p, running, training, mask):
    y = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), p["layers.0.weight"], p["layers.0.bias"])
    y = F.batch_norm(y, *running, p["layers.1.weight"], p["layers.1.bias"], training=training, momentum=0.2)
    y = F.prelu(y, p["layers.2.weight"])
    y = F.max_pool2d(y, 2)
    y = F.channel_shuffle(F.conv2d(y, p["layers.4.weight"], p["layers.4.bias"], padding=1, groups=2), 2)
    se = "layers.6."
    hidden = F.relu(F.linear(y.mean(dim=(2, 3)), p[se + "w1"], p[se + "b1"]))
    y = y * torch.sigmoid(F.linear(hidden, p[se + "w2"], p[se + "b2"]))[:, :, None, None]
    y = F.elu(y)
    if training:
        y = y * torch.tensor(mask) / 0.7
    return F.linear(y.mean(dim=(2, 3)), p["layers.10.weight"], p["layers.10.bias"])


@pytest.mark.parametrize("dtype", DTYPES)
def test_classifier_training_step_matches_torch(dtype):
    rng = np.random.default_rng(0)
    model = classifier(dtype, rng)
    x = rng.standard_normal((4, 3, 8, 7)).astype(dtype)
    target = np.array([0, 2, 1, 2])
    p = torch_params(model)
    running = (torch.zeros(8, dtype=torch.float64 if dtype == np.float64 else torch.float32), None)
    running = (running[0], torch.ones_like(running[0]))
    tx = torch.tensor(x, requires_grad=True)

    logits = model.forward(x)
    mask = model[8]._mask
    t_logits = classifier_torch(tx, p, running, True, mask)
    close(logits, t_logits, dtype, "logits")
    loss = mnn.cross_entropy(logits, target)
    t_loss = F.cross_entropy(t_logits, torch.tensor(target))
    assert abs(loss - t_loss.item()) < TOL[dtype]
    t_loss.backward()
    gx = model.backward(mnn.cross_entropy_backward(logits, target))
    close(gx, tx.grad, dtype, "input gradient")
    check_grads(model, p, dtype)
    close(model[1].running_mean, running[0], dtype, "running mean")
    close(model[1].running_var, running[1], dtype, "running var")

    model.eval()
    assert not model[1].training and not model[8].training
    with torch.no_grad():
        close(model.forward(x), classifier_torch(tx, p, running, False, None), dtype, "eval logits")
    model.train()
    assert model[1].training


def decoder(dtype, rng):
    return mnn.Sequential(
        mnn.ConvTranspose2d(4, 3, 3, stride=2, padding=1, output_padding=1, rng=rng, dtype=dtype),
        mnn.LeakyReLU(0.1),
        mnn.SeparableConv2d(3, 5, 3, padding=1, multiplier=2, rng=rng, dtype=dtype),
        mnn.Tanh(),
        mnn.SpatiallySeparableConv2d(5, 4, 3, padding=(1, 0), rng=rng, dtype=dtype),
        mnn.Sigmoid(),
        mnn.LocalResponseNorm(3, alpha=0.5, k=1.5),
        mnn.AvgPool2d(2),
        mnn.Softplus(beta=2.0),
        mnn.ReLU(),
        mnn.Flatten(),
        mnn.Linear(4 * 4 * 3, 2, bias=False, rng=rng, dtype=dtype),
    )


def decoder_torch(x, p):
    y = F.leaky_relu(F.conv_transpose2d(x, p["layers.0.weight"], p["layers.0.bias"], 2, 1, 1), 0.1)
    y = F.conv2d(y, p["layers.2.depthwise.weight"], None, padding=1, groups=3)
    y = torch.tanh(F.conv2d(y, p["layers.2.pointwise.weight"], p["layers.2.pointwise.bias"]))
    y = F.conv2d(y, p["layers.4.vertical.weight"], None, padding=(1, 0))
    y = torch.sigmoid(F.conv2d(y, p["layers.4.horizontal.weight"], p["layers.4.horizontal.bias"]))
    y = F.avg_pool2d(F.local_response_norm(y, 3, alpha=0.5, k=1.5), 2)
    y = F.relu(F.softplus(y, beta=2.0))
    return F.linear(y.flatten(1), p["layers.11.weight"])


@pytest.mark.parametrize("dtype", DTYPES)
def test_decoder_layers_match_torch(dtype):
    rng = np.random.default_rng(1)
    model = decoder(dtype, rng)
    x = rng.standard_normal((2, 4, 4, 4)).astype(dtype)
    p = torch_params(model)
    tx = torch.tensor(x, requires_grad=True)
    y = model.forward(x)
    ty = decoder_torch(tx, p)
    close(y, ty, dtype)
    g = rng.standard_normal(y.shape).astype(dtype)
    ty.backward(torch.tensor(g))
    close(model.backward(g), tx.grad, dtype)
    check_grads(model, p, dtype)
    # gradients accumulate until zero_grad
    before = model[0].weight.grad.copy()
    model.forward(x)
    model.backward(g)
    close(model[0].weight.grad, 2 * before, dtype)
    model.zero_grad()
    assert all(not p.grad.any() for p in model.parameters())


def _grad_sequence(shapes, steps, dtype):
    rng = np.random.default_rng(5)
    return [[rng.standard_normal(s).astype(dtype) for s in shapes] for _ in range(steps)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (lambda ps: mnn.SGD(ps, lr=0.1), lambda ps: torch.optim.SGD(ps, lr=0.1)),
        (
            lambda ps: mnn.SGD(ps, lr=0.05, momentum=0.9, weight_decay=0.01, nesterov=True),
            lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, weight_decay=0.01, nesterov=True),
        ),
        (
            lambda ps: mnn.SGD(ps, lr=0.05, momentum=0.5, dampening=0.3),
            lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.5, dampening=0.3),
        ),
        (lambda ps: mnn.Adam(ps, lr=0.01), lambda ps: torch.optim.Adam(ps, lr=0.01)),
        (
            lambda ps: mnn.Adam(ps, lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1),
            lambda ps: torch.optim.Adam(ps, lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1),
        ),
        (
            lambda ps: mnn.Adam(ps, lr=0.02, weight_decay=0.1, decoupled_weight_decay=True),
            lambda ps: torch.optim.AdamW(ps, lr=0.02, weight_decay=0.1),
        ),
    ],
    ids=["sgd", "sgd-nesterov-wd", "sgd-dampening", "adam", "adam-wd", "adamw"],
)
def test_optimizers_match_torch(dtype, ours, theirs):
    rng = np.random.default_rng(4)
    shapes = [(3, 2), (4,)]
    values = [rng.standard_normal(s).astype(dtype) for s in shapes]
    params = [mnn.Parameter(v.copy()) for v in values]
    tparams = [torch.tensor(v.copy(), requires_grad=True) for v in values]
    opt, topt = ours(params), theirs(tparams)
    for grads in _grad_sequence(shapes, 6, dtype):
        opt.zero_grad()
        for p, tp, g in zip(params, tparams, grads, strict=True):
            p.grad += g
            tp.grad = torch.tensor(g)
        opt.step()
        topt.step()
    for p, tp in zip(params, tparams, strict=True):
        assert p.data.dtype == np.dtype(dtype)
        close(p.data, tp, dtype)


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (mnn.he_uniform, lambda t: torch.nn.init.kaiming_uniform_(t, nonlinearity="relu")),
        (mnn.he_normal, lambda t: torch.nn.init.kaiming_normal_(t, nonlinearity="relu")),
        (mnn.glorot_uniform, torch.nn.init.xavier_uniform_),
        (mnn.glorot_normal, torch.nn.init.xavier_normal_),
    ],
)
@pytest.mark.parametrize("shape", [(64, 32, 3, 3), (200, 300)])
def test_initialisers_match_torch_scale(ours, theirs, shape):
    torch.manual_seed(0)
    t = theirs(torch.empty(shape, dtype=torch.float64)).numpy()
    w = ours(shape, rng=0, dtype=np.float64)
    assert w.shape == shape
    assert abs(w.std() / t.std() - 1) < 0.03  # same scale as torch's formula
    assert abs(np.abs(w).max() / np.abs(t).max() - 1) < 0.2
    np.testing.assert_array_equal(w, ours(shape, rng=0, dtype=np.float64))  # seeded: bit for bit
    assert ours(shape, rng=0).dtype == np.float32
