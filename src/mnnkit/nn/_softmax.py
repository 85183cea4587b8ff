"""Softmax family: softmax, log-softmax, CAMoE's dual softmax and the Gumbel softmax."""

from __future__ import annotations

from typing import Any

import numpy as np

from mnnkit._random import RngLike, as_generator, check_rng
from mnnkit._validation import is_int
from mnnkit.nn._validation import as_float_array, check_same_dtype, check_shape


def _axis(x: np.ndarray, axis: Any) -> int:
    if not is_int(axis) or not -x.ndim <= axis < x.ndim:
        msg = f"axis must be an int in [{-x.ndim}, {x.ndim}) for an array of shape {x.shape}, got {axis!r}"
        raise ValueError(msg)
    return int(axis) % x.ndim


def _grad_pair(grad_output: Any, x: np.ndarray) -> np.ndarray:
    g = as_float_array(grad_output, "grad_output")
    check_same_dtype(g, x, "grad_output", "x")
    check_shape(g, x.shape, "grad_output")
    return g


def _softmax(x: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _log_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def _softmax_grad(g: np.ndarray, y: np.ndarray, axis: int) -> np.ndarray:
    return y * (g - (g * y).sum(axis=axis, keepdims=True))


def _log_softmax_grad(g: np.ndarray, log_y: np.ndarray, axis: int) -> np.ndarray:
    return g - np.exp(log_y) * g.sum(axis=axis, keepdims=True)


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Softmax along ``axis``: ``exp(x) / sum(exp(x))``, shifted by the maximum for stability.

    Parameters
    ----------
    x
        Float array. Not modified.
    axis
        Axis that sums to 1 (use 1 for the channels of an NCHW array).

    Returns
    -------
    numpy.ndarray
        Shaped like ``x``.
    """
    x = as_float_array(x, "x")
    return _softmax(x, _axis(x, axis))


def softmax_backward(grad_output: np.ndarray, x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Gradient of :func:`softmax`: ``y * (g - sum(g * y))`` with ``y = softmax(x)``.

    Parameters
    ----------
    grad_output
        Gradient with respect to the output, shaped like ``x``.
    x, axis
        As given to :func:`softmax`.

    Returns
    -------
    numpy.ndarray
        Gradient with respect to ``x``.
    """
    x = as_float_array(x, "x")
    axis = _axis(x, axis)
    return _softmax_grad(_grad_pair(grad_output, x), _softmax(x, axis), axis)


def log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Logarithm of :func:`softmax`, computed as ``x - logsumexp(x)`` (no underflow to ``-inf``).

    Parameters
    ----------
    x
        Float array. Not modified.
    axis
        Axis of the distribution.

    Returns
    -------
    numpy.ndarray
        Shaped like ``x``.
    """
    x = as_float_array(x, "x")
    return _log_softmax(x, _axis(x, axis))


def log_softmax_backward(grad_output: np.ndarray, x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Gradient of :func:`log_softmax`: ``g - softmax(x) * sum(g)``.

    Parameters
    ----------
    grad_output
        Gradient with respect to the output, shaped like ``x``.
    x, axis
        As given to :func:`log_softmax`.

    Returns
    -------
    numpy.ndarray
        Gradient with respect to ``x``.
    """
    x = as_float_array(x, "x")
    axis = _axis(x, axis)
    return _log_softmax_grad(_grad_pair(grad_output, x), _log_softmax(x, axis), axis)


def _check_temperature(value: Any, name: str) -> float:
    value = float(value)
    if not (np.isfinite(value) and value > 0):
        msg = f"{name} must be positive and finite, got {value}"
        raise ValueError(msg)
    return value


def _dual_parts(sim: np.ndarray, temperature: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    z = sim / sim.dtype.type(temperature)
    prior = _softmax(z, 0) * sim.dtype.type(sim.shape[0])
    return z, prior, sim * prior


def dual_softmax(sim: np.ndarray, temperature: float = 1.0, log: bool = False) -> np.ndarray:
    """Dual softmax of a similarity matrix (CAMoE, Cheng et al. 2021, for cross-modal retrieval).

    First a softmax over each column (axis 0, with ``temperature``) gives a prior of how strongly
    each row (e.g. a video) claims each column (e.g. a caption) against the other rows; the
    similarities, re-weighted by that prior times the number of rows, then go through the usual
    softmax over each row (axis 1)::

        prior = n_rows * softmax(sim / temperature, axis=0)
        out = softmax(sim * prior, axis=1)

    A pair that is mutually the best match keeps a high score; a column that every row likes is
    damped. CAMoE's loss is ``-diag(dual_softmax(sim, temperature, log=True))``.

    Parameters
    ----------
    sim
        ``(n_rows, n_cols)`` similarities. Not modified.
    temperature
        Positive; CAMoE uses large values (1000): close to a uniform prior.
    log
        Return the log-probabilities (for a cross-entropy loss).

    Returns
    -------
    numpy.ndarray
        ``(n_rows, n_cols)``; each row sums to 1 (or its exp does, with ``log``).
    """
    sim = as_float_array(sim, "sim", ndim=2, layout="(n_rows, n_cols)")
    temperature = _check_temperature(temperature, "temperature")
    logits = _dual_parts(sim, temperature)[2]
    return _log_softmax(logits, 1) if log else _softmax(logits, 1)


def dual_softmax_backward(
    grad_output: np.ndarray, sim: np.ndarray, temperature: float = 1.0, log: bool = False
) -> np.ndarray:
    """Gradient of :func:`dual_softmax` with respect to ``sim`` (through both softmaxes).

    Parameters
    ----------
    grad_output
        ``(n_rows, n_cols)``.
    sim, temperature, log
        As given to :func:`dual_softmax`.

    Returns
    -------
    numpy.ndarray
        Gradient with respect to ``sim``.
    """
    sim = as_float_array(sim, "sim", ndim=2, layout="(n_rows, n_cols)")
    temperature = _check_temperature(temperature, "temperature")
    g = _grad_pair(grad_output, sim)
    z, prior, logits = _dual_parts(sim, temperature)
    if log:
        g_logits = _log_softmax_grad(g, _log_softmax(logits, 1), 1)
    else:
        g_logits = _softmax_grad(g, _softmax(logits, 1), 1)
    g_prior = g_logits * sim
    g_z = _softmax_grad(g_prior, prior / sim.dtype.type(sim.shape[0]), 0) * sim.dtype.type(sim.shape[0])
    return g_logits * prior + g_z / sim.dtype.type(temperature)


def gumbel_noise(shape: tuple[int, ...], rng: RngLike = None, dtype: Any = np.float64) -> np.ndarray:
    """Standard Gumbel samples ``-log(-log(U))``, seeded.

    Parameters
    ----------
    shape
        Shape of the sample.
    rng
        Randomness of the noise: an int seed >= 0 (same seed, same result), a :class:`numpy.random.Generator` (used as
        given: its stream advances) or None (fresh entropy from the operating system: a different result on every call).
    dtype
        float32 or float64.

    Returns
    -------
    numpy.ndarray
        Gumbel(0, 1) noise.
    """
    return as_generator(rng).gumbel(size=shape).astype(dtype)


def gumbel_softmax(
    logits: np.ndarray,
    tau: float = 1.0,
    hard: bool = False,
    axis: int = -1,
    rng: RngLike = None,
    noise: np.ndarray | None = None,
) -> np.ndarray:
    """Gumbel-softmax sample: a differentiable relaxation of a categorical draw (Jang et al. 2017).

    ``softmax((logits + G) / tau)`` with Gumbel noise ``G``. With ``hard=True`` the output is the
    one-hot of its argmax, and :func:`gumbel_softmax_backward` passes the gradient of the soft
    sample straight through.

    Parameters
    ----------
    logits
        Unnormalised log-probabilities. Not modified.
    tau
        Positive temperature; small values approach one-hot samples.
    hard
        Return one-hot samples (straight-through gradient).
    axis
        Axis of the categories.
    rng
        Randomness of the noise (checked, then unused when ``noise`` is given): an int seed >= 0 (same seed, same
        result), a :class:`numpy.random.Generator` (used as given: its stream advances) or None (fresh entropy from the
        operating system: a different result on every call).
    noise
        Gumbel noise shaped like ``logits`` (from :func:`gumbel_noise`); keep it for the backward.

    Returns
    -------
    numpy.ndarray
        Shaped like ``logits``.
    """
    logits = as_float_array(logits, "logits")
    axis = _axis(logits, axis)
    tau = _check_temperature(tau, "tau")
    check_rng(rng)
    if noise is None:
        noise = gumbel_noise(logits.shape, rng, logits.dtype)
    noise = _check_noise(noise, logits)
    y = _softmax((logits + noise) / logits.dtype.type(tau), axis)
    if not hard:
        return y
    one_hot = np.zeros_like(y)
    np.put_along_axis(one_hot, np.expand_dims(y.argmax(axis=axis), axis), 1, axis=axis)
    return one_hot


def _check_noise(noise: Any, logits: np.ndarray) -> np.ndarray:
    noise = as_float_array(noise, "noise")
    check_same_dtype(noise, logits, "noise", "logits")
    check_shape(noise, logits.shape, "noise")
    return noise


def gumbel_softmax_backward(
    grad_output: np.ndarray, logits: np.ndarray, noise: np.ndarray, tau: float = 1.0, axis: int = -1
) -> np.ndarray:
    """Gradient of :func:`gumbel_softmax` with respect to ``logits`` (soft or hard, straight-through).

    Parameters
    ----------
    grad_output
        Gradient with respect to the sample, shaped like ``logits``.
    logits, noise, tau, axis
        As used by :func:`gumbel_softmax` (the same ``noise``).

    Returns
    -------
    numpy.ndarray
        Gradient with respect to ``logits``.
    """
    logits = as_float_array(logits, "logits")
    axis = _axis(logits, axis)
    tau = _check_temperature(tau, "tau")
    noise = _check_noise(noise, logits)
    g = _grad_pair(grad_output, logits)
    t = logits.dtype.type(tau)
    y = _softmax((logits + noise) / t, axis)
    return _softmax_grad(g, y, axis) / t
