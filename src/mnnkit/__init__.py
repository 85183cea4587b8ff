"""mnnkit: mutual-nearest-neighbour batch correction and friends for AnnData.

The public API is re-exported here. Heavy or optional submodules (``nn``, ``pl``, ...) load
lazily on first attribute access, so ``import mnnkit`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

from mnnkit._logging import install as _install_logging

__version__ = "0.1.0"

_install_logging()

# public name -> module that defines it (imported on first access)
_LAZY_ATTRS = {
    "correct": "mnnkit.correction",
    "fast_mnn": "mnnkit.correction",
    "cluster_mnn": "mnnkit.correction",
    "multi_batch_norm": "mnnkit.correction.normalization",
    "rescale_batches": "mnnkit.correction.linear",
    "regress_batches": "mnnkit.correction.linear",
    "pca": "mnnkit.linalg",
    "randomized_svd": "mnnkit.linalg",
    "GaussianMixture": "mnnkit.cluster",
    "gmm": "mnnkit.cluster",
    "fit_genes": "mnnkit.stats",
    # every warning class, so that users can filter them (``warnings.simplefilter("ignore", mnnkit.X)``)
    "MnnkitWarning": "mnnkit._warnings",
    "InputDataWarning": "mnnkit._warnings",
    "ParameterWarning": "mnnkit._warnings",
    "SkippedMergeWarning": "mnnkit._warnings",
    "BoundaryWarning": "mnnkit._warnings",
    "ConvergenceWarning": "mnnkit._warnings",
}
_LAZY_SUBMODULES = {
    "compat",
    "correction",
    "datasets",
    "neighbors",
    "linalg",
    "cluster",
    "stats",
    "metrics",
    "pl",
    "nn",
    "cli",
}

__all__ = sorted([*_LAZY_ATTRS, *_LAZY_SUBMODULES, "__version__"])


def __getattr__(name: str) -> Any:
    if name in _LAZY_ATTRS:
        module = importlib.import_module(_LAZY_ATTRS[name])
        value = getattr(module, name)
    elif name in _LAZY_SUBMODULES:
        value = importlib.import_module(f"mnnkit.{name}")
    else:
        msg = f"module 'mnnkit' has no attribute {name!r}"
        raise AttributeError(msg)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
