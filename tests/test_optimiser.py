"""The project's Adam: torch's arithmetic and schedulers, without importing torch._dynamo."""

from __future__ import annotations

import subprocess
import sys

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


def test_training_does_not_import_torch_dynamo(small_case, tmp_path):
    """torch's optimisers import torch._dynamo (and sympy) on first use: about 1.5 s per process."""
    code = (
        "import sys\n"
        "from pycemrg_scar_reconstruction.cli import main\n"
        f"args = ['--mesh', {str(small_case['mesh'])!r}, '--image', {str(small_case['image'])!r},\n"
        f"        '--mask', {str(small_case['mask'])!r}, '--slice-thickness', '8']\n"
        f"assert main(['run', *args, '--output', {str(tmp_path / 'out.vtu')!r}, '--max-epochs', '3', '-q']) == 0\n"
        "print('torch' in sys.modules, 'torch._dynamo' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-2:] == ["True", "False"]
