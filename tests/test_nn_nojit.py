"""Every numba kernel of mnnkit.nn also runs as plain Python (NUMBA_DISABLE_JIT=1), with the same results.

The pure-Python run happens in a subprocess (so that coverage sees the kernels' lines and this
process keeps its compiled kernels); its results must match the compiled run of the same calls.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np

import mnnkit.nn as mnn

# small calls that between them reach every kernel in mnnkit/nn/_kernels.py, both stride branches included
CALLS = textwrap.dedent(
    """
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 4, 7, 6))
    w = rng.standard_normal((4, 2, 3, 2))
    wt = rng.standard_normal((4, 3, 3, 3))
    out = {}
    kw = dict(stride=(2, 1), padding=1, dilation=(1, 2), groups=2, padding_mode="reflect", method="direct")
    out["conv"] = mnn.conv2d(x, w, **kw)
    out["conv_gx"], out["conv_gw"], _ = mnn.conv2d_backward(np.ones_like(out["conv"]), x, w, **kw)
    kt = dict(stride=(1, 2), padding=1, output_padding=(0, 1), groups=2, method="direct")
    out["tconv"] = mnn.conv_transpose2d(x, wt, **kt)
    out["tconv_gx"], out["tconv_gw"], _ = mnn.conv_transpose2d_backward(np.ones_like(out["tconv"]), x, wt, **kt)
    out["im2col"] = mnn.im2col(x, (2, 3), stride=(1, 2), padding=1, dilation=2)
    out["col2im"] = mnn.col2im(out["im2col"], (7, 6), (2, 3), stride=(1, 2), padding=1, dilation=2)
    out["maxpool"] = mnn.max_pool2d(x, 3, stride=2, padding=1)
    out["maxpool_g"] = mnn.max_pool2d_backward(np.ones_like(out["maxpool"]), x, 3, stride=2, padding=1)
    """
)

SCRIPT = (
    "import sys\nimport numba\nimport numpy as np\nimport mnnkit.nn as mnn\nfrom mnnkit.nn import _kernels\n"
    "assert numba.config.DISABLE_JIT\n"
    "assert not hasattr(_kernels.conv_forward_kernel, 'py_func'), 'kernels should be plain functions'\n"
    + CALLS
    + "np.savez(sys.argv[1], **out)\n"
)


def run_calls() -> dict:
    namespace = {"np": np, "mnn": mnn}
    exec(CALLS, namespace)  # the same calls, compiled
    return namespace["out"]


def test_kernels_without_jit_match_compiled(tmp_path):
    path = tmp_path / "nojit.npz"
    env = {**os.environ, "NUMBA_DISABLE_JIT": "1"}
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(path)], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    nojit = np.load(path)
    compiled = run_calls()
    assert set(compiled) == set(nojit.files)
    for key, value in compiled.items():
        np.testing.assert_allclose(nojit[key], value, rtol=1e-12, atol=1e-12, err_msg=key)


def test_every_kernel_is_exercised():
    from mnnkit.nn import _kernels

    kernels = {name for name in dir(_kernels) if name.endswith("_kernel")}
    assert kernels == {
        "im2col_kernel",
        "col2im_kernel",
        "conv_forward_kernel",
        "conv_grad_input_kernel",
        "conv_grad_weight_kernel",
        "max_pool_forward_kernel",
        "max_pool_backward_kernel",
    }, "a new kernel needs a call in CALLS"
