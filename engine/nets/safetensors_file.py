"""Reading the project's own ``.safetensors`` weights: tensors plus the JSON header's metadata."""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import CheckpointFormatError


def read_safetensors(
    path: str | Path, *, name: str | Path | None = None
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors, header metadata) of a safetensors file; CheckpointFormatError naming the file
    (``name``, else ``path``) when it cannot be read (the caller checks that it holds the network
    it expects)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: f.get_tensor(k) for k in f.keys()}, f.metadata() or {}
    except Exception as exc:
        raise CheckpointFormatError(
            f"{path if name is None else name}: not a readable safetensors file ({exc})"
        ) from None
