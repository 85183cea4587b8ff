"""Sphinx configuration for the mnnkit documentation.

Build (from the repository root): ``sphinx-build -W -b html docs docs/_build/html``.

At build time this file generates, into ignored folders under ``docs/``:

* ``_autoapi/``: one API page per public module, listing every name in the module's ``__all__``
  (so a new public function appears in the reference without editing the docs), and the
  ``--help`` text of every command of the command line;
* ``notebooks/``: copies of ``../notebooks/*.ipynb``, rendered with their committed outputs
  (``nb_execution_mode = "off"``: the docs build never runs them; CI runs them in the tests).
"""

from __future__ import annotations

import importlib
import inspect
import runpy
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "src"))

import mnnkit  # noqa: E402

project = "mnnkit"
author = "mnnkit developers"
copyright = "mnnkit developers, MIT licence"  # noqa: A001
version = release = mnnkit.__version__

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
]

source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "**.ipynb_checkpoints"]
templates_path = ["_templates"]

# notebooks: render the committed outputs, never execute while building the docs
nb_execution_mode = "off"
myst_enable_extensions = ["colon_fence", "dollarmath"]
myst_heading_anchors = 3

# API reference: numpy-style docstrings (parsed by napoleon); types come from the annotations
autosummary_generate = True
autosummary_imported_members = True
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented_params"
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": True}
autoclass_content = "class"
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
napoleon_use_ivar = True  # "Attributes" sections as fields, not second descriptions of dataclass fields
napoleon_preprocess_types = False

# links to other projects' docs, from the inventories kept in docs/_inv: the build never downloads them.
# Their base URLs and objects are listed once, in docs/_inv/make_inventories.py (see CONTRIBUTING.md).
_INVENTORIES = runpy.run_path(str(HERE / "_inv" / "make_inventories.py"))["INVENTORIES"]
intersphinx_mapping = {name: (url, str(HERE / "_inv" / f"{name}.inv")) for name, (url, _, _) in _INVENTORIES.items()}

html_theme = "furo"
html_title = f"mnnkit {release}"
html_static_path: list[str] = []

# ---------------------------------------------------------------------------------------------
# generated pages
# ---------------------------------------------------------------------------------------------

API_MODULES = [
    ("mnnkit.datasets", "Example data", None),
    ("mnnkit.correction", "Batch correction: classic and fast MNN", None),
    ("mnnkit.correction.normalization", "Normalisation across batches (multiBatchNorm)", None),
    ("mnnkit.correction.linear", "Linear batch corrections: rescale and regress", None),
    ("mnnkit.compat", "Drop-ins for other packages (mnnpy)", None),
    ("mnnkit.metrics", "Integration metrics", None),
    ("mnnkit.neighbors", "Nearest neighbours", None),
    ("mnnkit.pl", "Plots", None),
    ("mnnkit.linalg", "Linear algebra: SVD and PCA", None),
    ("mnnkit.cluster", "Clustering: Gaussian mixtures", None),
    ("mnnkit.stats", "Statistics: maximum-likelihood fits", None),
    ("mnnkit.nn", "Image networks: mnnkit.nn", None),
]


def _first_line(obj) -> str:
    return (inspect.getdoc(obj) or "").strip().splitlines()[0]


def _summary(module) -> str:
    """First paragraph of a module docstring (plain text, safe to embed in reST)."""
    doc = inspect.getdoc(module) or ""
    return doc.split("\n\n", 1)[0].strip()


def _home(obj) -> str:
    """The listed module an object belongs to (the longest listed prefix of its ``__module__``)."""
    module = getattr(obj, "__module__", "") or ""
    homes = [m for m, _, _ in API_MODULES if module == m or module.startswith(m + ".")]
    return max(homes, key=len) if homes else ""


def _write_api(out: Path) -> None:
    shutil.rmtree(out, ignore_errors=True)  # no stale pages from names that were removed
    out.mkdir(parents=True)
    pages = []
    top = ["Top level: ``import mnnkit``", "============================", ""]
    top += ["These names are importable from ``mnnkit`` directly; each is documented in its module.", ""]
    own: list[str] = []
    for name in sorted(mnnkit.__all__, key=str.lower):
        obj = getattr(mnnkit, name)
        if inspect.ismodule(obj) or name.startswith("__"):
            continue
        role = "class" if inspect.isclass(obj) else "func"
        home = _home(obj)
        if not home:  # defined in a private root module (the warning classes): documented on this page
            own.append(name)
        top.append(f"- :{role}:`mnnkit.{name} <{home or 'mnnkit'}.{name}>`: {_first_line(obj)}")
    top.append("")
    if own:
        top += ["Warnings", "--------", ""]
        for name in own:
            top += [f".. autoclass:: mnnkit.{name}", "   :show-inheritance:", ""]
    (out / "mnnkit.rst").write_text("\n".join(top), encoding="utf-8")
    pages.append("mnnkit")
    for modname, title, names in API_MODULES:
        module = importlib.import_module(modname)
        names = names if names is not None else list(getattr(module, "__all__", []))
        # re-exports (e.g. NeighborResult in mnnkit.metrics) are documented once, in their own module
        # names defined in private root modules (warnings) are documented once, on the top-level page
        names = [
            n
            for n in names
            if _home(getattr(module, n)) == modname or (not _home(getattr(module, n)) and n not in mnnkit.__all__)
        ]
        functions = [n for n in names if not inspect.isclass(getattr(module, n))]
        classes = [n for n in names if inspect.isclass(getattr(module, n))]
        lines = [f"``{modname}``: {title}", "=" * (len(modname) + len(title) + 6), ""]
        lines += [f".. currentmodule:: {modname}", "", _summary(module), ""]
        for heading, group in (("Functions", functions), ("Classes", classes)):
            if not group:
                continue
            lines += [heading, "-" * len(heading), "", ".. autosummary::", "   :toctree: generated", ""]
            lines += [f"   {name}" for name in sorted(group, key=str.lower)] + [""]
        page = modname.replace(".", "_")
        (out / f"{page}.rst").write_text("\n".join(lines), encoding="utf-8")
        pages.append(page)
    index = ["API reference", "=============", ""]
    index += [
        "Every public function and class of mnnkit, generated from the docstrings. Functions that take",
        "an AnnData also say which matrix types they accept (dense ``numpy.ndarray``, ``scipy.sparse``",
        "CSR/CSC, and where stated ``dask.array.Array``).",
        "",
        ".. toctree::",
        "   :maxdepth: 1",
        "",
    ]
    index += [f"   {page}" for page in pages] + [""]
    (out / "index.rst").write_text("\n".join(index), encoding="utf-8")


def _write_cli(out: Path) -> None:
    import argparse
    import os

    from mnnkit.cli import build_parser

    os.environ["COLUMNS"] = "100"  # argparse wraps help text to the terminal width

    parser = build_parser()
    (out / "cli_mnnkit.txt").write_text(parser.format_help(), encoding="utf-8")
    for action in parser._actions:  # argparse keeps the sub-commands here
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                (out / f"cli_{name}.txt").write_text(sub.format_help(), encoding="utf-8")


def _copy_notebooks(out: Path) -> None:
    out.mkdir(exist_ok=True)
    for old in out.glob("*.ipynb"):
        old.unlink()
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        shutil.copy2(nb, out / nb.name)


_write_api(HERE / "_autoapi")
_write_cli(HERE / "_autoapi")
_copy_notebooks(HERE / "notebooks")
