"""The ``--plot DIR`` figures of ``mnnkit correct`` and ``mnnkit evaluate``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mnnkit.cli._errors import DataError
from mnnkit.cli._publish import publish_file


def make_plots(
    adata: Any,
    *,
    key: str,
    label_key: str | None,
    directory: Path,
    which: list[str],
    table: Any = None,
    force: bool = False,
) -> list[str]:
    """Write the named plots (``umap``, ``mnn_pairs``, ``metrics``) into ``directory``; return their paths.

    Each file is published like the .h5ad output (:func:`mnnkit.cli._publish.publish_file`): an existing plot is
    replaced only with ``force``.
    """
    from mnnkit.pl import DPI, correction_data, metrics_comparison, mnn_pairs, umap_comparison

    data = correction_data(adata, key) if {"umap", "mnn_pairs"} & set(which) else None
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        msg = f"cannot create the plot directory {directory}: {err.strerror or err}"
        raise DataError(msg) from err
    paths = []
    for name in which:
        if name == "umap":
            fig = umap_comparison(adata, key_added=key, label_key=label_key, data=data)
        elif name == "mnn_pairs":
            fig = mnn_pairs(adata, key_added=key, data=data)
        else:
            fig = metrics_comparison(adata, key_added=key, label_key=label_key, table=table)
        path = directory / f"{name}.png"
        publish_file(lambda tmp, fig=fig: fig.savefig(tmp, format="png", dpi=DPI), path, force=force)
        paths.append(str(path))
    return paths
