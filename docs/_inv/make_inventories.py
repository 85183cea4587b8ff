"""Write the small intersphinx inventories in this folder, so the docs link out without a network.

The docs build (``docs/conf.py``) reads ``docs/_inv/<project>.inv`` instead of downloading each
project's ``objects.inv``: builds stay offline, reproducible and fast. Each file lists only the
objects mnnkit's documentation refers to, with the URL of that object in the project's real docs.

Refresh (from the repository root, no third-party packages needed)::

    python docs/_inv/make_inventories.py

When the docs start referring to another outside object (a nitpicky build lists what is missing:
``sphinx-build -n -b html docs /tmp/docs_nitpicky``), add it to ``INVENTORIES`` below and rerun.
Where a network is available, a project's full inventory can replace its file instead, e.g.
``curl -o docs/_inv/numpy.inv https://numpy.org/doc/stable/objects.inv`` (larger, and without the
aliases in ``ALIASES``).

Format: Sphinx inventory version 2 (four header lines, then zlib-compressed lines
``name domain:role priority uri dispname``).
"""

from __future__ import annotations

import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: project -> (base URL used in docs/conf.py, version documented, objects). Each object is
#: ``(name, domain:role, page)``, the page relative to the base URL, ``{}`` standing for the name; the
#: anchor is the name (Sphinx's own convention, ``#numpy.ndarray``).
INVENTORIES: dict[str, tuple[str, str, list[tuple[str, str, str]]]] = {
    "anndata": (
        "https://anndata.readthedocs.io/en/stable/",
        "0.12",
        [
            ("anndata.AnnData", "py:class", "generated/{}.html"),
            ("anndata.concat", "py:function", "generated/{}.html"),
        ],
    ),
    "numpy": (
        "https://numpy.org/doc/stable/",
        "2.4",
        [
            ("numpy.ndarray", "py:class", "reference/generated/{}.html"),
            ("numpy.dtype", "py:class", "reference/generated/{}.html"),
            ("numpy.integer", "py:class", "reference/arrays.scalars.html"),
            ("numpy.random.Generator", "py:class", "reference/random/generator.html"),
            ("numpy.random.default_rng", "py:function", "reference/random/generator.html"),
            ("numpy.random.RandomState", "py:class", "reference/random/legacy.html"),
        ],
    ),
    "pandas": (
        "https://pandas.pydata.org/docs/",
        "2.3",
        [
            ("pandas.DataFrame", "py:class", "reference/api/{}.html"),
            ("pandas.Categorical", "py:class", "reference/api/{}.html"),
        ],
    ),
    "python": (
        "https://docs.python.org/3/",
        "3.13",
        [
            ("abc.ABC", "py:class", "library/abc.html"),
            ("collections.abc.Callable", "py:class", "library/collections.abc.html"),
            ("collections.abc.Iterable", "py:class", "library/collections.abc.html"),
            ("collections.abc.Iterator", "py:class", "library/collections.abc.html"),
            ("collections.abc.Sequence", "py:class", "library/collections.abc.html"),
            ("os.PathLike", "py:class", "library/os.html"),
            ("pathlib.Path", "py:class", "library/pathlib.html"),
        ],
    ),
    "scanpy": (
        # the oldest scanpy mnnkit supports (pyproject: scanpy>=1.10), whose page layout is fixed
        "https://scanpy.readthedocs.io/en/1.10.x/",
        "1.10",
        [
            ("scanpy.pp.pca", "py:function", "generated/{}.html"),
            ("scanpy.pp.neighbors", "py:function", "generated/{}.html"),
            ("scanpy.tl.umap", "py:function", "generated/{}.html"),
            ("scanpy.external.pp.mnn_correct", "py:function", "generated/{}.html"),
        ],
    ),
    "scipy": (
        "https://docs.scipy.org/doc/scipy/",
        "1.17",
        [
            ("scipy.sparse.issparse", "py:function", "reference/generated/{}.html"),
            ("scipy.sparse.csr_matrix", "py:class", "reference/generated/{}.html"),
            ("scipy.sparse.csc_matrix", "py:class", "reference/generated/{}.html"),
            ("scipy.sparse.csr_array", "py:class", "reference/generated/{}.html"),
            ("scipy.sparse.csc_array", "py:class", "reference/generated/{}.html"),
            ("scipy.sparse.spmatrix", "py:class", "reference/generated/{}.html"),
            ("scipy.sparse.sparray", "py:class", "reference/generated/{}.html"),
        ],
    ),
    "sklearn": (
        "https://scikit-learn.org/stable/",
        "1.9",
        [
            ("sklearn.base.BaseEstimator", "py:class", "modules/generated/{}.html"),
            ("sklearn.base.DensityMixin", "py:class", "modules/generated/{}.html"),
            ("sklearn.cluster.KMeans", "py:class", "modules/generated/{}.html"),
            ("sklearn.decomposition.PCA", "py:class", "modules/generated/{}.html"),
            ("sklearn.decomposition.TruncatedSVD", "py:class", "modules/generated/{}.html"),
            ("sklearn.exceptions.ConvergenceWarning", "py:class", "modules/generated/{}.html"),
            ("sklearn.mixture.GaussianMixture", "py:class", "modules/generated/{}.html"),
        ],
    ),
}

#: Where autodoc's rendering of type hints points (the defining, private module) -> the public name.
#: They enter the inventory as aliases with the public object's URL, so the type hints link too.
ALIASES = {
    "anndata._core.anndata.AnnData": "anndata.AnnData",
    "numpy.random._generator.Generator": "numpy.random.Generator",
    "pandas.core.frame.DataFrame": "pandas.DataFrame",
    "scipy.sparse._csr.csr_matrix": "scipy.sparse.csr_matrix",
    "scipy.sparse._matrix.spmatrix": "scipy.sparse.spmatrix",
    "scipy.sparse._base.sparray": "scipy.sparse.sparray",
}


def inventory_bytes(project: str, version: str, objects: list[tuple[str, str, str]]) -> bytes:
    """A Sphinx v2 inventory (``objects.inv``) listing ``objects``."""
    header = (
        "# Sphinx inventory version 2\n"
        f"# Project: {project}\n"
        f"# Version: {version}\n"
        "# The remainder of this file is compressed using zlib.\n"
    )
    lines = {name: (role, page.format(name) + "#" + name) for name, role, page in objects}
    for alias, public in ALIASES.items():
        if public in lines:
            lines[alias] = lines[public]
    # priority 1 (the default for objects); "-" as display name means "the name itself"
    body = "".join(f"{name} {role} 1 {uri} -\n" for name, (role, uri) in sorted(lines.items()))
    return header.encode() + zlib.compress(body.encode(), 9)


def main() -> None:
    """Write ``<project>.inv`` for every project in ``INVENTORIES``."""
    for project, (_base, version, objects) in INVENTORIES.items():
        (HERE / f"{project}.inv").write_bytes(inventory_bytes(project, version, objects))
        print(f"{project}.inv: {len(objects)} objects")


if __name__ == "__main__":
    main()
