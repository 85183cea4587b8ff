"""Every Numba kernel of mnnkit.stats also runs as plain Python (NUMBA_DISABLE_JIT=1), same answers.

The interpreted run happens in a subprocess (the flag is read at import time) on a small
matrix built to reach every branch: counts above the direct-summation cutoff and the histogram
buffer, dispersions on both sides of the Stirling switch, zero inflation interior and at the
boundary, all-zero and underdispersed genes, explicit zeros, and non-convergence.
"""

import os
import runpy
import subprocess
import sys
import textwrap

import numpy as np

SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    import numba
    from scipy import sparse
    from mnnkit.stats import _kernels as K, _special as S


    def compute():
        rng = np.random.default_rng(3)
        n = 60

        def nb(mu, alpha):
            return rng.negative_binomial(1 / alpha, 1 / (1 + alpha * mu), size=n)

        cols = [
            nb(2.0, 1.5),                                   # theta < 10
            nb(150.0, 0.02),                                # theta >= 10, counts > 64
            nb(3000.0, 0.3),                                # counts >= 1024 (sorted path)
            nb(5.0, 0.5) * (rng.random(n) >= 0.4),          # zero-inflated
            rng.binomial(30, 0.5, size=n) * (rng.random(n) >= 0.5),  # ZI, underdispersed
            rng.binomial(6, 0.5, size=n),                   # underdispersed, no excess zeros
            np.zeros(n, dtype=np.int64),                    # all zero
        ]
        dense = np.column_stack(cols).astype(np.float64)
        csc = sparse.csc_matrix(dense)
        data = np.concatenate([csc.data, [0.0]])  # an explicit zero at the end of the last column
        indptr = csc.indptr.astype(np.int64)
        indptr[-1] += 1
        out = {}
        for model in (K.POISSON, K.NB, K.ZIP, K.ZINB):
            for key, arr in zip("abcdefg", K.fit_csc(indptr, data, n, model, 1e-10, 1000)):
                out[f"m{model}_{key}"] = np.asarray(arr, dtype=np.float64)
        # non-convergence paths
        for key, arr in zip("abcdefg", K.fit_csc(indptr, data, n, K.ZINB, 1e-10, 1)):
            out[f"short_{key}"] = np.asarray(arr, dtype=np.float64)
        values = np.array([3, 70], dtype=np.int64)
        freqs = np.array([2.0, 1.0])
        # Newton that cannot start (Hessian not negative definite far from the optimum)
        res = K._newton(values, freqs, 2, 10.0, 500.0, 50.0, 0.9, True, 1e-10, 5)
        out["newton_bad"] = np.array([float(v) for v in res])
        # data without excess zeros: Newton is driven onto pi = 0 (step halving, failure), a
        # short Newton run stops at max_steps, and EM then takes over with its strict criterion
        values = np.array([1, 2, 3, 5, 9, 20], dtype=np.int64)
        freqs = np.array([5.0, 4.0, 3.0, 2.0, 2.0, 1.0])
        res = K._newton(values, freqs, 6, 40.0, 0.5, 0.05, 0.05, True, 1e-10, 50)
        out["path_halving"] = np.array([float(v) for v in res])
        res = K._newton(values, freqs, 6, 40.0, 0.5, 0.05, 0.05, True, 1e-10, 2)
        out["path_short"] = np.array([float(v) for v in res])
        res = K._zero_inflated(values, freqs, 6, 40.0, 95.0, 95.0 / 40.0, 0.8, 0.3, True, 1e-10, 40)
        out["path_em"] = np.array([float(v) for v in res])
        out["special"] = np.array(
            [
                *S.rising_log_sum_closed(500.0, 1e-13),
                *S.rising_log_sum_closed(500.0, 0.0),
                *S.rising_log_sum_closed(500.0, 1e-4),
                *S.rising_log_sum_closed(500.0, 3.0),
                S.digamma(0.3),
                S.trigamma(0.3),
                *S.log1p_ratio(0.01),
                *S.log1p_ratio(5.0),
                S.log1pmx(0.01),
                S.log1pmx(2.0),
            ]
        )
        return out


    if __name__ == "__main__":
        assert numba.config.DISABLE_JIT
        assert not isinstance(K.fit_csc, numba.core.dispatcher.Dispatcher)
        np.savez(sys.argv[1], **compute())
    """
)


def test_kernels_run_without_jit(tmp_path):
    script = tmp_path / "nojit_kernels.py"
    script.write_text(SCRIPT)
    out = tmp_path / "nojit.npz"
    env = {**os.environ, "NUMBA_DISABLE_JIT": "1"}
    proc = subprocess.run(
        [sys.executable, str(script), str(out)], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    interpreted = dict(np.load(out))
    jitted = runpy.run_path(str(script))["compute"]()
    assert interpreted.keys() == jitted.keys()
    for key, value in jitted.items():
        if key.endswith("_e"):
            continue  # iteration counts: accept/reject decisions between log-likelihoods equal to
            # the last digit may differ between compiled and interpreted math; the optimum may not
        # the path_* runs iterate along a flat ridge towards pi = 0, where last-digit differences
        # between libm and Numba's math functions may grow
        rtol = 1e-6 if key.startswith("path_") else 1e-10
        np.testing.assert_allclose(interpreted[key], value, rtol=rtol, atol=1e-300, err_msg=key)
    # the matrix really reaches the branches the docstring promises
    flags = jitted["m3_g"]
    assert set(flags.astype(int)) >= {0, 1, 2, 4}
    assert not jitted["short_f"].all()  # some gene not converged with max_iter=1
    assert jitted["newton_bad"][3] == 0.0  # Newton reported failure
    assert jitted["path_halving"][3] == 0.0 and jitted["path_halving"][4] > 2
    assert jitted["path_short"][3] == 0.0 and jitted["path_short"][4] == 2
