"""Device choice: the GPU when there is one, the CPU otherwise, and names users recognise."""

from __future__ import annotations

import torch

from ..errors import LikenessError

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then Apple MPS, then CPU; an unavailable explicit choice is an error."""
    if name not in DEVICE_CHOICES and not name.startswith("cuda:"):
        raise LikenessError(f"unknown device {name!r}; choose one of {', '.join(DEVICE_CHOICES)}")
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise LikenessError("device 'cuda' requested but no CUDA GPU is available; use --device cpu or auto")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise LikenessError("device 'mps' requested but Apple Metal is not available; use --device cpu or auto")
    return torch.device(name)


def describe_device(device: torch.device) -> str:
    """A short label for status bars: ``"CPU (2 threads)"`` or the GPU's marketing name."""
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return f"{props.name} ({props.total_memory / 2**30:.0f} GiB)"
    if device.type == "mps":
        return "Apple GPU (Metal)"
    return f"CPU ({torch.get_num_threads()} threads)"


def is_out_of_memory(exc: BaseException) -> bool:
    """True for CUDA/MPS out-of-memory errors, which the engine retries on the CPU."""
    return isinstance(exc, torch.cuda.OutOfMemoryError) or "out of memory" in str(exc).lower()
