"""Every warning class mnnkit raises, in one place, so users can filter them precisely.

All derive from :class:`MnnkitWarning`. :class:`ConvergenceWarning` also derives from scikit-learn's
``sklearn.exceptions.ConvergenceWarning``, so either filter catches it; it is created on first use,
which keeps ``import mnnkit`` from importing scikit-learn.
"""

from __future__ import annotations

import os
import sys
import warnings
from typing import Any

__all__ = [
    "BoundaryWarning",
    "ConvergenceWarning",  # noqa: F822 (created on first use, see __getattr__)
    "InputDataWarning",
    "MnnkitWarning",
    "ParameterWarning",
    "SkippedMergeWarning",
    "warn",
]


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def warn(message: str, category: type[Warning]) -> None:
    """Issue a warning attributed to the first caller outside mnnkit (the user's line), however deep it is raised."""
    frame, level = sys._getframe(1), 2  # stacklevel 2 is our caller
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE_DIR):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)


class MnnkitWarning(UserWarning):
    """Base class of every warning mnnkit raises."""


class InputDataWarning(MnnkitWarning):
    """The input data look unlike what a function expects (e.g. raw counts where log data are expected)."""


class ParameterWarning(MnnkitWarning):
    """A parameter was adjusted to fit the data (e.g. ``k`` capped at a batch's size)."""


class SkippedMergeWarning(MnnkitWarning):
    """A merge step found no MNN pairs: the batches were merged without correction."""


class BoundaryWarning(MnnkitWarning):
    """A maximum-likelihood estimate lies on the boundary of the parameter space (e.g. no overdispersion)."""


def _convergence_warning() -> type:
    from sklearn.exceptions import ConvergenceWarning as SklearnConvergenceWarning

    class ConvergenceWarning(MnnkitWarning, SklearnConvergenceWarning):
        """An iterative fit (EM, Newton, IRLS) stopped at ``max_iter`` before reaching its tolerance.

        A subclass of both :class:`MnnkitWarning` and :class:`sklearn.exceptions.ConvergenceWarning`,
        so either filter catches it.
        """

    ConvergenceWarning.__module__ = __name__
    return ConvergenceWarning


def __getattr__(name: str) -> Any:
    if name == "ConvergenceWarning":
        value = _convergence_warning()
        globals()[name] = value
        return value
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)
