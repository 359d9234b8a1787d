"""The devices a user could pick, found without importing PyTorch (``likeness info``, a GUI's list).

CUDA GPUs are asked of the NVIDIA driver library itself (``libcuda``), Apple's GPU is assumed on
arm64 macOS, and the CPU is always there. ``engine.runtime.device`` resolves a choice with torch
when a restoration starts, and says there if this driver's GPU is one torch cannot use.
"""

from __future__ import annotations

import ctypes
import os
import platform
import sys

CUDA_LIBRARIES = {"linux": ("libcuda.so.1", "libcuda.so"), "win32": ("nvcuda.dll",)}


def cpu_threads() -> int:
    """The threads a restoration uses on the CPU (torch's default: the cores this process may use)."""
    if "torch" in sys.modules:  # already loaded: its own figure
        return sys.modules["torch"].get_num_threads()
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def cuda_devices() -> list[tuple[str, str]]:
    """(``cuda:N``, "name (memory GiB)") of each GPU the driver reports; none without a driver."""
    lib = None
    for name in CUDA_LIBRARIES.get(sys.platform, ()):
        try:
            lib = ctypes.CDLL(name)
            break
        except OSError:
            continue
    if lib is None or lib.cuInit(0) != 0:
        return []
    count = ctypes.c_int()
    if lib.cuDeviceGetCount(ctypes.byref(count)) != 0:
        return []
    devices = []
    for i in range(count.value):
        handle, name, memory = ctypes.c_int(), ctypes.create_string_buffer(256), ctypes.c_size_t()
        if lib.cuDeviceGet(ctypes.byref(handle), i) != 0 or lib.cuDeviceGetName(name, 256, handle) != 0:
            continue
        lib.cuDeviceTotalMem_v2(ctypes.byref(memory), handle)
        devices.append((f"cuda:{i}", f"{name.value.decode(errors='replace')} ({memory.value / 2**30:.0f} GiB)"))
    return devices


def available_devices() -> list[tuple[str, str]]:
    """(id, label) of every device the user could pick, the CPU first."""
    out = [("cpu", f"CPU ({cpu_threads()} threads)"), *cuda_devices()]
    if sys.platform == "darwin" and platform.machine() == "arm64":
        out.append(("mps", "Apple GPU (Metal)"))
    return out
