"""The project's Adam: torch's arithmetic and schedulers (that a run never imports torch._dynamo: test_layers)."""

from __future__ import annotations

import pytest
import torch

from pycemrg_scar_reconstruction.optimiser import Adam


def _train(optimiser: type[torch.optim.Adam], schedule: str) -> tuple[torch.Tensor, float]:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))
    x = torch.randn(256, 3)
    y = x.sum(1, keepdim=True).sin()
    opt = optimiser(net.parameters(), lr=3e-3)
    if schedule == "plateau":
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=2, threshold=0.05)
    elif schedule == "cyclic":
        sched = torch.optim.lr_scheduler.CyclicLR(opt, base_lr=1e-3, max_lr=1e-2, step_size_up=20, cycle_momentum=False)
    else:
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-2, total_steps=151, cycle_momentum=False)
    for _ in range(150):
        loss = ((net(x) - y) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if schedule == "plateau":
            sched.step(float(loss.detach()))
        else:
            sched.step()
    return torch.cat([p.detach().flatten() for p in net.parameters()]), opt.param_groups[0]["lr"]


@pytest.mark.parametrize("schedule", ["plateau", "cyclic", "onecycle"])
def test_adam_is_torchs_adam_bit_for_bit(schedule):
    ours, lr = _train(Adam, schedule)
    theirs, lr_theirs = _train(torch.optim.Adam, schedule)
    assert torch.equal(ours, theirs) and lr == lr_theirs
    if schedule == "plateau":
        assert lr < 3e-3  # the schedule did act on the optimiser
