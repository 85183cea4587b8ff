"""``import mnnkit`` does not load mnnkit.nn, and loading mnnkit.nn compiles nothing and needs no torch."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import sys
import mnnkit
assert "mnnkit.nn" not in sys.modules, "import mnnkit must not import mnnkit.nn"
nn = mnnkit.nn  # lazy submodule
assert "mnnkit.nn" in sys.modules
assert "torch" not in sys.modules, "mnnkit.nn must not import torch"
from mnnkit.nn import _kernels
compiled = [n for n in dir(_kernels) if n.endswith("_kernel") and getattr(_kernels, n).signatures]
assert not compiled, f"compiled at import: {compiled}"
print("ok")
"""


def test_lazy_import_and_no_compilation_at_import():
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"
