"""mnnkit's messages follow scanpy's verbosity and logfile, name batches by name, and warnings point
at the user's line (mnnkit._logging, mnnkit._warnings.warn)."""

from __future__ import annotations

import io
import logging
import re
import warnings

import pytest
import scanpy as sc

import mnnkit
from tests.conftest import three_batches, to_adata


@pytest.fixture
def scanpy_log():
    """Route scanpy's log into a buffer; restore its settings afterwards."""
    verbosity, logfile = sc.settings.verbosity, sc.settings.logfile
    buffer = io.StringIO()
    sc.settings.logfile = buffer
    yield buffer
    sc.settings.verbosity, sc.settings.logfile = verbosity, logfile


@pytest.mark.parametrize("method", ["classic", "fast"])
def test_messages_follow_scanpy_verbosity(method, scanpy_log) -> None:
    adata = to_adata(three_batches(n=(30, 25, 28), genes=10))
    adata.obs["batch"] = adata.obs["batch"].cat.rename_categories(["liver", "lung", "kidney"])
    run = (
        (lambda: mnnkit.correct(adata, "batch", k=5))
        if method == "classic"
        else (lambda: mnnkit.fast_mnn(adata, "batch", k=5, d=4, svd_solver="exact"))
    )
    sc.settings.verbosity = "error"
    run()
    assert scanpy_log.getvalue() == ""
    sc.settings.verbosity = "info"
    run()
    text = scanpy_log.getvalue()
    assert "of 3 batches: liver, lung, kidney" in text
    assert "merged [lung] onto [liver]:" in text and "merged [kidney] onto [liver, lung]:" in text
    # scanpy's closing line, whatever the wall time (a busy machine can take a second or more)
    assert re.search(r"\n    finished \(\d+:\d\d:\d\d\)$", text.rstrip())


def test_standard_logging_without_scanpy_settings(caplog) -> None:
    adata = to_adata(three_batches(n=(30, 25, 28), genes=10))
    with caplog.at_level(logging.INFO):
        mnnkit.correct(adata, "batch", k=5)
    messages = [r.getMessage() for r in caplog.records if r.name == "mnnkit"]
    assert any(m.startswith("computing MNN correction") for m in messages)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        mnnkit.correct(adata, "batch", k=5)
    assert not [r for r in caplog.records if r.name == "mnnkit"]


def test_the_mnnkit_logger_level_silences_it(scanpy_log) -> None:
    sc.settings.verbosity = "info"
    logger = logging.getLogger("mnnkit")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        mnnkit.correct(to_adata(three_batches(n=(30, 25, 28), genes=10)), "batch", k=5)
    finally:
        logger.setLevel(level)
    assert scanpy_log.getvalue() == ""


def test_skipped_merge_warning_names_batches_and_the_callers_line(no_pairs_in_step_two) -> None:
    adata = to_adata(three_batches(n=(30, 25, 28), genes=10))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mnnkit.fast_mnn(adata, "batch", k=5, d=3, svd_solver="exact")
    skipped = [w for w in caught if issubclass(w.category, mnnkit.SkippedMergeWarning)]
    assert len(skipped) == 1
    assert "merge step 2 found no MNN pairs between batches [b0, b1] and [b2]" in str(skipped[0].message)
    assert skipped[0].filename == __file__
