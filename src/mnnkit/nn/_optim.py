"""Optimisers: SGD with (Nesterov) momentum and Adam / AdamW, with PyTorch's update rules."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable

import numpy as np

from mnnkit.nn._module import Parameter


def _check_params(params: Iterable[Parameter]) -> list[Parameter]:
    params = list(params)
    if not params:
        msg = "the optimiser got no parameters"
        raise ValueError(msg)
    for i, p in enumerate(params):
        if not isinstance(p, Parameter):
            msg = f"parameter {i} is not a Parameter (pass module.parameters()): {type(p).__name__}"
            raise TypeError(msg)
    return params


def _non_negative(value: float, name: str) -> float:
    value = float(value)
    if not (np.isfinite(value) and value >= 0):
        msg = f"{name} must be a finite number >= 0, got {value}"
        raise ValueError(msg)
    return value


class Optimizer(ABC):
    """Base class: holds the parameters; :meth:`step` updates them in place from their gradients."""

    def __init__(self, params: Iterable[Parameter], lr: float):
        self.params = _check_params(params)
        self.lr = _non_negative(lr, "lr")

    def zero_grad(self) -> None:
        """Set every parameter gradient to zero."""
        for p in self.params:
            p.grad[...] = 0

    @abstractmethod
    def step(self) -> None:
        """Update every parameter once from its current gradient."""


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, Nesterov momentum and weight decay.

    With ``g = grad + weight_decay * p``: ``buf = momentum * buf + (1 - dampening) * g`` (``buf = g``
    at the first step), then ``p -= lr * (g + momentum * buf)`` (Nesterov) or ``p -= lr * buf``.

    Parameters
    ----------
    params
        Parameters to train, e.g. ``model.parameters()``.
    lr
        Learning rate.
    momentum
        Momentum factor (0: plain SGD).
    dampening
        Dampening of the momentum.
    weight_decay
        L2 penalty added to the gradient.
    nesterov
        Use Nesterov momentum (needs ``momentum > 0`` and no dampening).
    """

    def __init__(
        self,
        params: Iterable[Parameter],
        lr: float = 0.01,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ):
        super().__init__(params, lr)
        self.momentum = _non_negative(momentum, "momentum")
        self.dampening = _non_negative(dampening, "dampening")
        self.weight_decay = _non_negative(weight_decay, "weight_decay")
        if nesterov and (self.momentum == 0 or self.dampening != 0):
            msg = "nesterov momentum needs momentum > 0 and dampening 0"
            raise ValueError(msg)
        self.nesterov = nesterov
        self._buffers: list[np.ndarray | None] = [None] * len(self.params)

    def step(self) -> None:
        """Update every parameter once (the rule is in the class docstring)."""
        for i, p in enumerate(self.params):
            t = p.data.dtype.type
            g = p.grad + t(self.weight_decay) * p.data if self.weight_decay else p.grad.copy()
            if self.momentum:
                buf = self._buffers[i]
                if buf is None:
                    buf = g.copy()
                else:
                    buf *= t(self.momentum)
                    buf += t(1 - self.dampening) * g
                self._buffers[i] = buf
                g = g + t(self.momentum) * buf if self.nesterov else buf
            p.data -= t(self.lr) * g


class Adam(Optimizer):
    """Adam (Kingma and Ba 2015), or AdamW with ``decoupled_weight_decay=True``.

    ``m = b1 m + (1 - b1) g``, ``v = b2 v + (1 - b2) g**2``, then
    ``p -= lr * (m / (1 - b1**t)) / (sqrt(v / (1 - b2**t)) + eps)``.

    Parameters
    ----------
    params
        Parameters to train.
    lr
        Learning rate.
    betas
        Decay rates ``(b1, b2)`` of the first and second moment estimates, each in ``[0, 1)``.
    eps
        Added to the denominator.
    weight_decay
        L2 penalty added to the gradient (Adam) or decay ``p *= 1 - lr * weight_decay`` (AdamW).
    decoupled_weight_decay
        Decouple the weight decay from the gradient (AdamW).
    """

    def __init__(
        self,
        params: Iterable[Parameter],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        decoupled_weight_decay: bool = False,
    ):
        super().__init__(params, lr)
        b1, b2 = (float(b) for b in betas)
        if not (0 <= b1 < 1 and 0 <= b2 < 1):
            msg = f"betas must be in [0, 1), got {betas}"
            raise ValueError(msg)
        self.betas = (b1, b2)
        self.eps = _non_negative(eps, "eps")
        self.weight_decay = _non_negative(weight_decay, "weight_decay")
        self.decoupled = bool(decoupled_weight_decay)
        self.t = 0
        self._m = [np.zeros_like(p.data) for p in self.params]
        self._v = [np.zeros_like(p.data) for p in self.params]

    def step(self) -> None:
        """Update every parameter once (the rule is in the class docstring)."""
        self.t += 1
        b1, b2 = self.betas
        c1, c2 = 1 - b1**self.t, 1 - b2**self.t
        for p, m, v in zip(self.params, self._m, self._v, strict=True):
            t = p.data.dtype.type
            g = p.grad
            if self.weight_decay and self.decoupled:
                p.data *= t(1 - self.lr * self.weight_decay)
            elif self.weight_decay:
                g = g + t(self.weight_decay) * p.data
            m *= t(b1)
            m += t(1 - b1) * g
            v *= t(b2)
            v += t(1 - b2) * g * g
            p.data -= t(self.lr / c1) * m / (np.sqrt(v) / t(np.sqrt(c2)) + t(self.eps))
