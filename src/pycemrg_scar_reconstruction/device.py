"""Devices, mixed precision, memory and CPU threads: where the work runs.

The library never changes torch's global thread count by itself: :func:`torch_threads` is called
by the orchestrators (:mod:`.api`, the CLI) around the work they run.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from .config import RuntimeConfig
from .errors import InputError


def resolve_device(name: str) -> torch.device:
    """'auto' -> cuda when available, else cpu."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"`device` {name}: no CUDA device is available here; use cpu or auto")
    device = torch.device(name)
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise InputError(
            f"`device` {name}: this machine has {torch.cuda.device_count()} CUDA device(s), cuda:0 .. "
            f"cuda:{torch.cuda.device_count() - 1}; choose one of them"
        )
    return device


def autocast_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for an ``amp`` setting on a device (None: full float32)."""
    if amp == "off" or (amp == "auto" and device.type != "cuda"):
        return None
    if amp == "fp16":
        return torch.float16
    if amp == "bf16":
        return torch.bfloat16
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def cpu_cores() -> int:
    """Cores this process may run on (affinity), for the CPU thread count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def physical_cores() -> int:
    """Physical cores (not hyper-threads) among those this process may use (Linux: /proc/cpuinfo)."""
    allowed = cpu_cores()
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return allowed
    pairs = set()
    physical = core = None
    for line in text.splitlines():  # a few lines per logical CPU; not a hot path
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "physical id":
            physical = value.strip()
        elif key == "core id":
            core = value.strip()
        elif not line.strip() and core is not None:
            pairs.add((physical, core))
            physical = core = None
    if core is not None:
        pairs.add((physical, core))
    return max(1, min(allowed, len(pairs))) if pairs else allowed


def _omp_threads() -> int | None:
    value = os.environ.get("OMP_NUM_THREADS", "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else None


def thread_count(runtime: RuntimeConfig, load: float | None = None) -> int:
    """CPU threads for torch under ``runtime``.

    ``deterministic``: 1, the count every machine has (on this project's CPU training gives the same
    bits on any thread count, tested; other CPUs' kernels are not known to); ``threads``
    when given; ``OMP_NUM_THREADS`` when set; otherwise the physical cores left free by the other
    work on the machine: ``physical cores - load`` rounded, at least 1 (``load``: the 1-minute load
    average, read when not given). Issue 19 measured under load on 2 cores the same 201 epochs at
    190 s with two threads and 21 s with one, so a busy machine gets one thread.
    """
    if runtime.deterministic:
        return 1
    if runtime.threads is not None:
        return runtime.threads
    omp = _omp_threads()
    if omp is not None:
        return omp
    cores = physical_cores()
    if load is None:
        try:
            load = os.getloadavg()[0]
        except OSError:
            load = 0.0
    return max(1, min(cores, int(np.floor(cores - load + 0.5))))


@contextlib.contextmanager
def torch_threads(runtime: RuntimeConfig) -> Iterator[int]:
    """Set torch's CPU thread count for the duration of the block (restored after); yields it."""
    before = torch.get_num_threads()
    n = thread_count(runtime)
    if n != before:
        torch.set_num_threads(n)
    try:
        yield n
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def available_memory_mb(device: torch.device) -> float:
    """Free memory on ``device`` in MiB (CUDA: free device memory; CPU: available physical pages)."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0] / 2**20
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (ValueError, OSError, AttributeError):  # not POSIX
        return 4096.0


def memory_budget_mb(device: torch.device, memory_mb: int | None) -> int:
    """The prediction batch budget: as given, or a quarter of the free memory (64 MiB .. 8 GiB)."""
    if memory_mb is not None:
        return memory_mb
    return int(min(max(available_memory_mb(device) / 4, 64), 8192))
