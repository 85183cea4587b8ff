"""Composite blocks (ResNet bottleneck, BoTNet, Inception, gated convolution) and 2-D attention against PyTorch."""

from __future__ import annotations

import numpy as np
import pytest

import mnnkit.nn as mnn
from tests.conftest import close

torch = pytest.importorskip("torch", reason="torch is the test oracle for mnnkit.nn (pip install torch, CPU build)")
F = torch.nn.functional
torch.set_num_threads(1)

DTYPES = [np.float32, np.float64]


def torch_mhsa(x, w_qkv, rel_h, rel_w, heads):
    """Self-attention with the full (query, key) table of relative embeddings built by index arithmetic."""
    n, c, h, w = x.shape
    d = c // heads
    qkv = torch.einsum("oc,nchw->nohw", w_qkv, x).reshape(n, 3, heads, d, h * w)
    q, k, v = qkv[:, 0] * d**-0.5, qkv[:, 1], qkv[:, 2]
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    ys, xs = ys.flatten(), xs.flatten()
    table = rel_h[ys[None, :] - ys[:, None] + h - 1] + rel_w[xs[None, :] - xs[:, None] + w - 1]  # (L, L, d)
    logits = torch.einsum("nhdi,nhdj->nhij", q, k) + torch.einsum("nhdi,ijd->nhij", q, table)
    attn = torch.softmax(logits, dim=-1)
    return torch.einsum("nhij,nhdj->nhdi", attn, v).reshape(n, c, h, w)


def run_torch(module, x, p, prefix=""):
    """Evaluate one of our modules with torch operations, reading its settings and the tensors ``p``."""
    if isinstance(module, mnn.Sequential):
        for i, layer in enumerate(module.layers):
            x = run_torch(layer, x, p, f"{prefix}layers.{i}.")
        return x
    if isinstance(module, mnn.Conv2d):
        pad = module.padding
        if isinstance(pad, int):
            pad = (pad, pad)
        if module.padding_mode != "zeros" and not isinstance(pad, str):
            x = F.pad(x, (pad[1], pad[1], pad[0], pad[0]), mode=module.padding_mode)
            pad = 0
        return F.conv2d(
            x, p[prefix + "weight"], p.get(prefix + "bias"), module.stride, pad, module.dilation, module.groups
        )
    if isinstance(module, mnn.BatchNorm2d):
        return F.batch_norm(x, None, None, p[prefix + "weight"], p[prefix + "bias"], training=True)
    if isinstance(module, mnn.ReLU):
        return F.relu(x)
    if isinstance(module, mnn.AvgPool2d):
        return F.avg_pool2d(x, module.kernel_size)
    if isinstance(module, mnn.MaxPool2d):
        return F.max_pool2d(x, module.kernel_size, module.stride, module.padding)
    if isinstance(module, mnn.Identity):
        return x
    if isinstance(module, mnn.MultiHeadSelfAttention2d):
        return torch_mhsa(x, p[prefix + "w_qkv"], p[prefix + "rel_h"], p[prefix + "rel_w"], module.heads)
    raise NotImplementedError(type(module))


def compare(model, x, torch_forward, dtype):
    # a block chains several batch norms, whose float32 rounding grows with the largest entries: scaled tolerance
    p = {name: torch.tensor(par.data, requires_grad=True) for name, par in model.named_parameters()}
    tx = torch.tensor(x, requires_grad=True)
    y = model.forward(x)
    ty = torch_forward(tx, p)
    close(y, ty, dtype, "forward", scaled=True)
    g = np.random.default_rng(9).standard_normal(y.shape).astype(dtype)
    ty.backward(torch.tensor(g))
    close(model.backward(g), tx.grad, dtype, "input gradient", scaled=True)
    for name, par in model.named_parameters():
        close(par.grad, p[name].grad, dtype, name, scaled=True)


def residual_torch(model):
    return lambda x, p: F.relu(run_torch(model.main, x, p, "main.") + run_torch(model.shortcut, x, p, "shortcut."))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    ("in_ch", "mid", "out", "stride", "groups", "mode"),
    [(8, 2, 8, 1, 1, "zeros"), (4, 4, None, 2, 2, "reflect"), (6, 3, 6, 1, 1, "circular")],
)
def test_bottleneck_matches_torch(dtype, in_ch, mid, out, stride, groups, mode):
    rng = np.random.default_rng(0)
    model = mnn.Bottleneck(in_ch, mid, out, stride, groups, padding_mode=mode, rng=rng, dtype=dtype)
    expected_projection = (out or 4 * mid) != in_ch or stride != 1
    assert isinstance(model.shortcut, mnn.Sequential) == expected_projection
    compare(model, rng.standard_normal((2, in_ch, 7, 6)).astype(dtype), residual_torch(model), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("stride", "heads", "out"), [(1, 2, 8), (2, 1, None)])
def test_bottleneck_transformer_matches_torch(dtype, stride, heads, out):
    rng = np.random.default_rng(1)
    model = mnn.BottleneckTransformer(8, 4, 4, 6, heads=heads, out_channels=out, stride=stride, rng=rng, dtype=dtype)
    compare(model, rng.standard_normal((2, 8, 4, 6)).astype(dtype), residual_torch(model), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("heads", [1, 3])
def test_mhsa2d_matches_torch(dtype, heads):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 6, 3, 5)).astype(dtype)
    w = rng.standard_normal((18, 6)).astype(dtype)
    rh, rw = rng.standard_normal((5, 6 // heads)).astype(dtype), rng.standard_normal((9, 6 // heads)).astype(dtype)
    tensors = [torch.tensor(a, requires_grad=True) for a in (x, w, rh, rw)]
    ty = torch_mhsa(*tensors, heads)
    close(mnn.mhsa2d(x, w, rh, rw, heads), ty, dtype)
    g = rng.standard_normal(x.shape).astype(dtype)
    ty.backward(torch.tensor(g))
    for ours, theirs in zip(mnn.mhsa2d_backward(g, x, w, rh, rw, heads), tensors, strict=True):
        close(ours, theirs.grad, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", ["zeros", "replicate"])
def test_inception_matches_torch(dtype, mode):
    rng = np.random.default_rng(3)
    model = mnn.InceptionBlock(4, 2, 3, 4, 2, 3, 2, padding_mode=mode, rng=rng, dtype=dtype)
    x = rng.standard_normal((2, 4, 7, 6)).astype(dtype)

    def forward(tx, p):
        outs = []
        for i, branch in enumerate(model.branches):
            if i == 3 and mode != "zeros":
                y = F.max_pool2d(F.pad(tx, (1, 1, 1, 1), mode=mode), 3, 1)
                outs.append(F.relu(F.conv2d(y, p["branches.3.layers.1.weight"], p["branches.3.layers.1.bias"])))
            else:
                outs.append(run_torch(branch, tx, p, f"branches.{i}."))
        return torch.cat(outs, dim=1)

    assert model.forward(x).shape == (2, 2 + 4 + 3 + 2, 7, 6)
    compare(model, x, forward, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("activation", "reference"), [("elu", F.elu), (None, lambda z: z), ("tanh", torch.tanh)])
def test_gated_conv_matches_torch(dtype, activation, reference):
    rng = np.random.default_rng(4)
    model = mnn.GatedConv2d(3, 4, 3, stride=2, padding=1, activation=activation, rng=rng, dtype=dtype)
    x = rng.standard_normal((2, 3, 7, 8)).astype(dtype)

    def forward(tx, p):
        z = F.conv2d(tx, p["conv.weight"], p["conv.bias"], 2, 1)
        return reference(z[:, :4]) * torch.sigmoid(z[:, 4:])

    compare(model, x, forward, dtype)
