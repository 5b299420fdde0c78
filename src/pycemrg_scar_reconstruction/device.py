"""Devices, mixed precision, memory and CPU threads: where the work runs.

The library never changes torch's global thread count by itself: :func:`torch_threads` is called
by the orchestrators (:mod:`.api`, the CLI) around the work they run.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch

from .config import RuntimeConfig
from .errors import InputError


def resolve_device(name: str) -> torch.device:
    """'auto' -> cuda when available, else cpu."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"`device` {name}: no CUDA device is available here; use cpu or auto")
    return torch.device(name)


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


def thread_count(runtime: RuntimeConfig, current: int) -> int:
    """CPU threads for torch under ``runtime``, given torch's ``current`` count.

    ``deterministic``: 1 (threaded float reductions can differ between processes); ``threads``
    when given; otherwise ``current`` capped at :func:`cpu_cores` (more threads than cores only
    adds contention).
    """
    if runtime.deterministic:
        return 1
    if runtime.threads is not None:
        return runtime.threads
    return min(current, cpu_cores())


@contextlib.contextmanager
def torch_threads(runtime: RuntimeConfig) -> Iterator[int]:
    """Set torch's CPU thread count for the duration of the block (restored after); yields it."""
    before = torch.get_num_threads()
    n = thread_count(runtime, before)
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
