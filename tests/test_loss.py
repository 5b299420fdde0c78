"""Group loss: scatter-mean parity with a loop and torch_scatter, and its gradients."""

from __future__ import annotations

import torch

from pycemrg_scar_reconstruction.loss import HAVE_TORCH_SCATTER, group_loss, scatter_mean, scatter_mean_native


def reference_loss(pred, group, target):
    """The published tool's loop, as the slow reference."""
    losses = [(target[g] - pred[group == g].mean()) ** 2 for g in range(len(target))]
    return torch.stack(losses).mean()


def test_scatter_mean_matches_a_loop_and_torch_scatter():
    gen = torch.Generator().manual_seed(0)
    group = torch.sort(torch.randint(0, 50, (1000,), generator=gen)).values
    group = torch.unique(group, return_inverse=True)[1]
    src = torch.rand(1000, generator=gen, dtype=torch.float64)
    g = int(group.max()) + 1
    loop = torch.stack([src[group == i].mean() for i in range(g)])
    torch.testing.assert_close(scatter_mean_native(src, group, g), loop)
    torch.testing.assert_close(scatter_mean(src, group, g), loop)
    if HAVE_TORCH_SCATTER:  # the optional extra must give the same numbers
        import torch_scatter

        torch.testing.assert_close(torch_scatter.scatter_mean(src, group, dim=0, dim_size=g), loop)


def test_group_loss_equals_the_loop_with_and_without_counts():
    gen = torch.Generator().manual_seed(1)
    group = torch.repeat_interleave(torch.arange(30), torch.randint(1, 20, (30,), generator=gen))
    pred = torch.rand(group.shape[0], generator=gen, dtype=torch.float64)
    target = torch.rand(30, generator=gen, dtype=torch.float64)
    count = torch.bincount(group).double()
    ref = reference_loss(pred, group, target)
    torch.testing.assert_close(group_loss(pred, group, target), ref)
    torch.testing.assert_close(group_loss(pred, group, target, count), ref)


def test_gradcheck_double_precision():
    gen = torch.Generator().manual_seed(2)
    group = torch.repeat_interleave(torch.arange(8), torch.randint(1, 6, (8,), generator=gen))
    pred = torch.rand(group.shape[0], generator=gen, dtype=torch.float64, requires_grad=True)
    target = torch.rand(8, generator=gen, dtype=torch.float64)
    count = torch.bincount(group).double()
    assert torch.autograd.gradcheck(lambda p: group_loss(p, group, target), (pred,))
    assert torch.autograd.gradcheck(lambda p: group_loss(p, group, target, count), (pred,))
