"""torch's Adam, without the 1.5 s its first use costs every process.

``torch.optim.Optimizer.add_param_group`` and ``zero_grad`` are wrapped so that their first call
imports ``torch._dynamo`` (and sympy with it), and ``Adam.step`` imports it on every call: about
1.5 s once per process on this project's CPU, which a `run` of a 75,000-node case (10-20 s) pays
in full. This subclass calls the same functions undecorated: the arithmetic, the state and the
learning-rate schedulers are torch's own, so the weights are bit-identical (tested).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch


def _undecorated(function: Callable[..., Any]) -> Callable[..., Any]:
    """The function a ``functools.wraps`` decorator wrapped (itself when it is not wrapped)."""
    return getattr(function, "__wrapped__", function)


class Adam(torch.optim.Adam):
    """``torch.optim.Adam`` (same arguments, same results) that never imports ``torch._dynamo``.

    Not for use under ``torch.compile`` of the optimiser step (the project compiles only the model).
    """

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        _undecorated(torch.optim.Optimizer.add_param_group)(self, param_group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        _undecorated(torch.optim.Optimizer.zero_grad)(self, set_to_none)

    def step(self, closure: Callable[[], float] | None = None) -> Any:
        # what the decorator does around the step for differentiable=False, less the dynamo graph breaks
        with torch.no_grad():
            return _undecorated(torch.optim.Adam.step)(self, closure)
