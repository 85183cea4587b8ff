"""The common result type of the maximum-likelihood fits."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats


@dataclass(frozen=True, repr=False, eq=False)
class FitResult:
    """Result of a maximum-likelihood fit of one distribution to one sample.

    Attributes
    ----------
    distribution
        Name of the fitted distribution (``"normal"``, ``"nb"``, ...).
    params
        Maximum-likelihood estimates by parameter name, in the distribution's parameter order.
    se
        Standard errors from the observed Fisher information (the negative Hessian of the
        log-likelihood at the estimate). NaN for a parameter whose estimate lies on the boundary
        of the parameter space (listed in ``at_boundary``), where Wald theory does not apply.
    cov
        Inverse observed Fisher information, ``(k, k)`` in parameter order (read-only); NaN rows
        and columns for parameters at the boundary.
    loglik
        Maximised log-likelihood (full normalising constants included, so values are comparable
        across distributions fitted to the same data).
    nobs
        Number of observations.
    converged
        Whether the optimiser met its tolerance (always True for closed-form estimates).
    n_iter
        Iterations used (0 for closed-form estimates).
    at_boundary
        Names of parameters whose estimate lies on the boundary of the parameter space.
    """

    distribution: str
    params: dict[str, float]
    se: dict[str, float]
    cov: np.ndarray
    loglik: float
    nobs: int
    converged: bool = True
    n_iter: int = 0
    at_boundary: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        cov = np.array(self.cov, dtype=np.float64)
        cov.setflags(write=False)
        object.__setattr__(self, "cov", cov)

    @property
    def n_params(self) -> int:
        """Number of free parameters of the model (boundary estimates still count)."""
        return len(self.params)

    @property
    def aic(self) -> float:
        """Akaike information criterion, ``2 k - 2 loglik``."""
        return 2.0 * self.n_params - 2.0 * self.loglik

    @property
    def bic(self) -> float:
        """Bayesian information criterion, ``k log(nobs) - 2 loglik``."""
        return self.n_params * math.log(self.nobs) - 2.0 * self.loglik

    def conf_int(self, level: float = 0.95) -> dict[str, tuple[float, float]]:
        """Wald confidence intervals ``estimate +/- z se``.

        Parameters
        ----------
        level
            Coverage probability, in (0, 1).

        Returns
        -------
        dict
            ``{name: (lower, upper)}``; NaN bounds for parameters at the boundary.
        """
        if not 0.0 < level < 1.0:
            msg = f"level must be in (0, 1), got {level!r}"
            raise ValueError(msg)
        z = stats.norm.ppf(0.5 + level / 2.0)
        return {k: (v - z * self.se[k], v + z * self.se[k]) for k, v in self.params.items()}

    def to_frame(self, level: float = 0.95) -> pd.DataFrame:
        """Parameter table with columns ``estimate``, ``se``, ``ci_lower``, ``ci_upper``.

        Parameters
        ----------
        level
            Coverage probability of the Wald intervals.

        Returns
        -------
        pandas.DataFrame
            One row per parameter.
        """
        ci = self.conf_int(level)
        return pd.DataFrame(
            {
                "estimate": list(self.params.values()),
                "se": list(self.se.values()),
                "ci_lower": [ci[k][0] for k in self.params],
                "ci_upper": [ci[k][1] for k in self.params],
            },
            index=pd.Index(list(self.params), name="parameter"),
        )

    def __repr__(self) -> str:
        parts = ", ".join(f"{k}={v:.6g} (se {self.se[k]:.3g})" for k, v in self.params.items())
        flag = "" if self.converged else ", NOT converged"
        return f"FitResult({self.distribution}: {parts}; loglik={self.loglik:.6g}, nobs={self.nobs}{flag})"
