"""``Parameter`` and ``Module``: the bookkeeping that lets layers be stacked and trained.

A module's ``forward`` caches what its ``backward`` needs; ``backward(grad_output)`` adds the
parameter gradients to each ``Parameter.grad`` (they accumulate until ``zero_grad``) and returns
the gradient with respect to the module's input.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any

import numpy as np


class Parameter:
    """A trainable array and its accumulated gradient.

    Parameters
    ----------
    data
        Initial value (kept as given, not copied).
    """

    __slots__ = ("data", "grad")

    def __init__(self, data: np.ndarray):
        self.data = data
        self.grad = np.zeros_like(data)

    def __repr__(self) -> str:
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype})"


class Module(ABC):
    """Base class of layers and blocks.

    Subclasses set parameters (:class:`Parameter`) and sub-modules as attributes and implement
    ``forward(x)`` and ``backward(grad_output)``; the base class finds them for
    :meth:`parameters`, :meth:`train`, :meth:`eval`, :meth:`zero_grad` and :meth:`state_dict`.
    Names listed in ``_buffers`` are arrays that belong to the state but are not trained (the
    running statistics of batch normalisation).
    """

    _buffers: tuple[str, ...] = ()
    training: bool = True

    @abstractmethod
    def forward(self, x: np.ndarray) -> np.ndarray:
        """Compute the output and remember what the backward pass needs."""

    @abstractmethod
    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        """Accumulate parameter gradients and return the gradient with respect to the input."""

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)

    def _cached(self, name: str = "_input") -> Any:
        value = getattr(self, name, None)
        if value is None:
            msg = f"{type(self).__name__}.backward called before forward"
            raise RuntimeError(msg)
        return value

    def children(self) -> Iterator[tuple[str, Module]]:
        """Yield ``(name, module)`` for the direct sub-modules, in definition order."""
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value
            elif isinstance(value, (list, tuple)):
                for i, item in enumerate(value):
                    if isinstance(item, Module):
                        yield f"{name}.{i}", item

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        """Yield ``(dotted name, parameter)`` for this module and its sub-modules."""
        for name, value in vars(self).items():
            if isinstance(value, Parameter):
                yield prefix + name, value
        for name, child in self.children():
            yield from child.named_parameters(f"{prefix}{name}.")

    def parameters(self) -> list[Parameter]:
        """Return all trainable parameters."""
        return [p for _, p in self.named_parameters()]

    def train(self, mode: bool = True) -> Module:
        """Switch this module and its sub-modules to training (or evaluation) mode; return self."""
        self.training = bool(mode)
        for _, child in self.children():
            child.train(mode)
        return self

    def eval(self) -> Module:
        """Switch to evaluation mode (batch norm uses running statistics, dropout is off); return self."""
        return self.train(False)

    def zero_grad(self) -> None:
        """Set every parameter gradient to zero."""
        for p in self.parameters():
            p.grad[...] = 0

    def _named_state(self, prefix: str = "") -> Iterator[tuple[str, Any]]:
        for name, p in vars(self).items():
            if isinstance(p, Parameter):
                yield prefix + name, p
        for name in self._buffers:
            yield prefix + name, self
        for name, child in self.children():
            yield from child._named_state(f"{prefix}{name}.")

    def state_dict(self) -> dict[str, np.ndarray]:
        """Return copies of all parameters and buffers, by dotted name."""
        out = {}
        for name, holder in self._named_state():
            value = holder.data if isinstance(holder, Parameter) else getattr(holder, name.rsplit(".", 1)[-1])
            out[name] = np.array(value, copy=True)
        return out

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Copy values into the parameters and buffers (names and shapes must match)."""
        expected = dict(self._named_state())
        if set(state) != set(expected):
            missing, extra = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
            msg = f"state_dict keys do not match: missing {missing}, unexpected {extra}"
            raise KeyError(msg)
        for name, holder in expected.items():
            target = holder.data if isinstance(holder, Parameter) else getattr(holder, name.rsplit(".", 1)[-1])
            value = np.asarray(state[name])
            if value.shape != target.shape:
                msg = f"{name}: shape {value.shape} does not match {target.shape}"
                raise ValueError(msg)
            target[...] = value

    def __repr__(self) -> str:
        kids = list(self.children())
        if not kids:
            return f"{type(self).__name__}({self.extra_repr()})"
        body = "\n".join(f"  ({n}): " + repr(m).replace("\n", "\n  ") for n, m in kids)
        return f"{type(self).__name__}(\n{body}\n)"

    def extra_repr(self) -> str:
        """Return the one-line description of a leaf module's settings."""
        return ""
