"""The group loss: mean over groups of (target - mean prediction over the group's nodes)^2.

Group means are a scatter-mean over the batch's memberships: ``torch_scatter`` when the optional
``[scatter]`` extra is installed, native ``index_add_`` otherwise (tests hold the two equal). No
Python loop over groups, no ``unique`` per step.
"""

from __future__ import annotations

import torch

try:  # optional extra
    import torch_scatter as _torch_scatter
except Exception:  # pragma: no cover - depends on the environment
    _torch_scatter = None

HAVE_TORCH_SCATTER = _torch_scatter is not None


def scatter_sum_native(src: torch.Tensor, index: torch.Tensor, dim_size: int) -> torch.Tensor:
    """Sum of ``src`` (E,) per index value in 0..dim_size-1, with ``index_add_``."""
    return torch.zeros(dim_size, dtype=src.dtype, device=src.device).index_add_(0, index, src)


def scatter_mean_native(src: torch.Tensor, index: torch.Tensor, dim_size: int) -> torch.Tensor:
    """Mean of ``src`` (E,) per index value (empty groups give 0), native torch."""
    counts = scatter_sum_native(torch.ones_like(src), index, dim_size)
    return scatter_sum_native(src, index, dim_size) / counts.clamp(min=1)


def scatter_mean(src: torch.Tensor, index: torch.Tensor, dim_size: int) -> torch.Tensor:
    """Mean of ``src`` (E,) per group index: torch_scatter when installed, native torch otherwise."""
    if _torch_scatter is not None:
        return _torch_scatter.scatter_mean(src, index, dim=0, dim_size=dim_size)
    return scatter_mean_native(src, index, dim_size)


def group_loss(
    pred: torch.Tensor, local_group: torch.Tensor, target: torch.Tensor, count: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean over groups of (target - group mean of ``pred``)^2.

    Parameters
    ----------
    pred : (E,) predictions per membership (already averaged over MC samples).
    local_group : (E,) int64 group of each membership, 0..G_b-1 within the batch.
    target : (G_b,) group targets.
    count : (G_b,) memberships per group when known (complete groups): saves counting them.

    Returns
    -------
    scalar loss.
    """
    g = target.shape[0]
    if count is None:
        means = scatter_mean(pred, local_group, g)
    elif _torch_scatter is not None:
        means = _torch_scatter.scatter_add(pred, local_group, dim=0, dim_size=g) / count
    else:
        means = scatter_sum_native(pred, local_group, g) / count
    return torch.mean((target - means) ** 2)
