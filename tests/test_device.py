"""Where the work runs: the device name and the CPU thread rule."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

import pycemrg_scar_reconstruction.device as device
from pycemrg_scar_reconstruction.config import RuntimeConfig
from pycemrg_scar_reconstruction.errors import InputError


def test_the_thread_rule(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(device, "physical_cores", lambda: 8)
    assert device.thread_count(RuntimeConfig(deterministic=True), load=0.0) == 1
    assert device.thread_count(RuntimeConfig(threads=3), load=7.0) == 3
    assert device.thread_count(RuntimeConfig(), load=0.0) == 8  # an idle machine: every physical core
    assert device.thread_count(RuntimeConfig(), load=2.6) == 5  # the cores the other work leaves
    assert device.thread_count(RuntimeConfig(), load=7.8) == 1  # a busy machine: one thread
    assert device.thread_count(RuntimeConfig(), load=20.0) == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert device.thread_count(RuntimeConfig(), load=0.0) == 2
    assert device.thread_count(RuntimeConfig(threads=4), load=0.0) == 4  # an explicit option wins


def test_physical_cores_are_at_most_the_usable_cores():
    assert 1 <= device.physical_cores() <= device.cpu_cores()


def test_device_names():
    for name in ("auto", "cpu", "cuda", "cuda:0", "cuda:12"):
        assert RuntimeConfig(device=name).device == name
    for bad in ("gpu", "cuda:", "cuda:x", "cpu:0"):
        with pytest.raises(ValidationError):
            RuntimeConfig(device=bad)
    assert device.resolve_device("cpu").type == "cpu"
    if not device.torch.cuda.is_available():
        with pytest.raises(InputError, match="no CUDA device is available here"):
            device.resolve_device("cuda:1")
