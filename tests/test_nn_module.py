"""Module bookkeeping: parameters, modes, gradient accumulation, state dicts and layer errors (no torch)."""

from __future__ import annotations

import numpy as np
import pytest

import mnnkit.nn as mnn


def small_net(seed=0):
    return mnn.Sequential(
        mnn.Conv2d(2, 4, 3, padding=1, rng=seed),
        mnn.BatchNorm2d(4),
        mnn.ReLU(),
        mnn.Dropout(0.5, rng=seed),
        mnn.GlobalAvgPool2d(),
        mnn.Linear(4, 3, rng=seed),
    )


def test_parameters_and_state_dict_round_trip():
    net = small_net()
    names = [n for n, _ in net.named_parameters()]
    assert names == [
        "layers.0.weight",
        "layers.0.bias",
        "layers.1.weight",
        "layers.1.bias",
        "layers.5.weight",
        "layers.5.bias",
    ]
    state = net.state_dict()
    assert set(state) == {*names, "layers.1.running_mean", "layers.1.running_var"}
    other = small_net(seed=1)
    assert not np.array_equal(other[0].weight.data, net[0].weight.data)
    x = np.random.default_rng(0).standard_normal((4, 2, 5, 5)).astype(np.float32)
    net.forward(x)  # updates the running statistics of net, not of the saved state
    assert not np.array_equal(net[1].running_mean, state["layers.1.running_mean"])
    other.load_state_dict(net.state_dict())
    net.eval()
    other.eval()
    np.testing.assert_array_equal(other.forward(x), net.forward(x))
    with pytest.raises(KeyError, match="missing"):
        other.load_state_dict({})
    bad = net.state_dict()
    bad["layers.0.weight"] = np.zeros((1, 1))
    with pytest.raises(ValueError, match="does not match"):
        other.load_state_dict(bad)


def test_train_eval_modes_and_dropout():
    net = small_net()
    x = np.random.default_rng(1).standard_normal((6, 2, 4, 4)).astype(np.float32)
    assert net.training and net[3].training
    a, b = net.forward(x), net.forward(x)
    assert not np.array_equal(a, b)  # a new dropout mask each training pass
    net.eval()
    assert not net[1].training and not net[3].training
    np.testing.assert_array_equal(net.forward(x), net.forward(x))
    net.train()
    assert net[1].training


def test_backward_before_forward_and_accumulation():
    layer = mnn.Linear(3, 2, rng=0)
    with pytest.raises(RuntimeError, match="Linear.backward called before forward"):
        layer.backward(np.ones((1, 2), dtype=np.float32))
    x = np.ones((2, 3), dtype=np.float32)
    layer.forward(x)
    layer.backward(np.ones((2, 2), dtype=np.float32))
    np.testing.assert_array_equal(layer.weight.grad, np.full((2, 3), 2.0))
    layer.backward(np.ones((2, 2), dtype=np.float32))
    np.testing.assert_array_equal(layer.weight.grad, np.full((2, 3), 4.0))
    layer.zero_grad()
    assert not layer.weight.grad.any()


def test_first_layer_can_skip_the_input_gradient():
    net = small_net()
    net[0].input_grad = False
    x = np.random.default_rng(2).standard_normal((3, 2, 4, 4)).astype(np.float32)
    out = net.forward(x)
    assert net.backward(np.ones_like(out)) is None
    assert net[0].weight.grad.any()


def test_training_reduces_the_loss():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((32, 2, 6, 6)).astype(np.float32)
    target = (x[:, 0].mean(axis=(1, 2)) > 0).astype(int)  # a learnable rule
    net = mnn.Sequential(mnn.Conv2d(2, 4, 3, rng=0), mnn.ReLU(), mnn.GlobalAvgPool2d(), mnn.Linear(4, 2, rng=0))
    opt = mnn.SGD(net.parameters(), lr=0.5, momentum=0.9)
    losses = []
    for _ in range(40):
        opt.zero_grad()
        logits = net.forward(x)
        losses.append(mnn.cross_entropy(logits, target))
        net.backward(mnn.cross_entropy_backward(logits, target))
        opt.step()
    assert losses[-1] < 0.5 * losses[0]


def test_layer_and_optimizer_argument_errors():
    with pytest.raises(ValueError, match="must be divisible by groups"):
        mnn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="init must be one of"):
        mnn.Conv2d(2, 2, 3, init="zeros")
    with pytest.raises(TypeError, match="dtype must be float32 or float64"):
        mnn.Linear(2, 2, dtype=np.int32)
    with pytest.raises(TypeError, match="layer 1 is not a Module"):
        mnn.Sequential(mnn.ReLU(), np.ones(3))
    with pytest.raises(ValueError, match="the optimiser got no parameters"):
        mnn.Adam([])
    with pytest.raises(TypeError, match="is not a Parameter"):
        mnn.SGD([np.ones(3)])
    with pytest.raises(ValueError, match="betas must be in"):
        mnn.Adam(mnn.Linear(2, 2).parameters(), betas=(1.0, 0.9))
    with pytest.raises(ValueError, match="nesterov momentum needs"):
        mnn.SGD(mnn.Linear(2, 2).parameters(), nesterov=True)
    with pytest.raises(ValueError, match="stride of a BottleneckTransformer must be 1 or 2"):
        mnn.BottleneckTransformer(4, 2, 4, 4, heads=1, stride=3)
    with pytest.raises(ValueError, match="identity shortcut needs"):
        mnn.Bottleneck(4, 2, 8, projection=False)
    with pytest.raises(ValueError, match=r"channels \(6\) must be divisible by heads \(4\)"):
        mnn.MultiHeadSelfAttention2d(6, 4, 3, 3)
    with pytest.raises(ValueError, match="activation must be one of"):
        mnn.GatedConv2d(2, 2, activation="gelu")
    assert "Conv2d(2, 4, kernel_size=(3, 3)" in repr(small_net())
