"""Maximum-likelihood utilities: distribution fits, likelihood-ratio tests, per-gene count fits.

Single-sample fits return a :class:`FitResult` (parameters, standard errors from the
observed Fisher information, log-likelihood, AIC, BIC, convergence):

- continuous: :func:`fit_normal`, :func:`fit_lognormal`, :func:`fit_exponential`, :func:`fit_gamma`
- binary: :func:`fit_bernoulli`, :func:`fit_binomial`
- counts: :func:`fit_poisson`, :func:`fit_nb` (NB2, ``Var = mu + alpha mu^2``),
  :func:`fit_zip`, :func:`fit_zinb` (EM over the zero-inflation indicator)

:func:`likelihood_ratio_test` compares nested fits (with the boundary mixture null for
Poisson vs NB and the zero-inflated models). :func:`fit_genes` fits a count model to every
gene of an AnnData, sparse-aware, and writes the estimates to ``.var``.
"""

from mnnkit._warnings import BoundaryWarning, ConvergenceWarning
from mnnkit.stats._count_fits import fit_nb, fit_poisson, fit_zinb, fit_zip
from mnnkit.stats._fits import fit_bernoulli, fit_binomial, fit_exponential, fit_gamma, fit_lognormal, fit_normal
from mnnkit.stats._genes import fit_genes
from mnnkit.stats._lrt import LikelihoodRatioTest, likelihood_ratio_test
from mnnkit.stats._result import FitResult

__all__ = [
    "BoundaryWarning",
    "ConvergenceWarning",
    "FitResult",
    "LikelihoodRatioTest",
    "fit_bernoulli",
    "fit_binomial",
    "fit_exponential",
    "fit_gamma",
    "fit_genes",
    "fit_lognormal",
    "fit_nb",
    "fit_normal",
    "fit_poisson",
    "fit_zinb",
    "fit_zip",
    "likelihood_ratio_test",
]
