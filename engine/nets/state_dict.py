"""Reading a weights file into a flat state dict, whichever network it holds.

PyTorch files are read with ``torch.load(weights_only=True)``, so no code in them ever runs, and
canonicalised the way spandrel does: the training containers BasicSR and insightface write
(``params_ema``, ``params``, ``state_dict``, ``model``) are unwrapped and DataParallel's
``module.`` prefix is stripped. The project's own ``.safetensors`` files are flat already and
carry their configs in the JSON header, returned as the metadata.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointFormatError
from .safetensors_file import read_safetensors

StateDict = dict[str, torch.Tensor]

#: Containers unwrapped in this order (EMA weights first: they are what inference uses).
CONTAINER_KEYS = ("params_ema", "params", "state_dict", "model")
PARALLEL_PREFIX = "module."


def canonical_state_dict(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` with its training containers unwrapped and ``module.`` prefixes stripped."""
    for key in CONTAINER_KEYS:
        inner = obj.get(key)
        if isinstance(inner, dict):
            obj = inner
    return {k.removeprefix(PARALLEL_PREFIX) if isinstance(k, str) else k: v for k, v in obj.items()}


def read_checkpoint(
    path: str | Path, *, expected: str = "network weights", name: str | Path | None = None
) -> tuple[dict[str, Any], dict[str, str]]:
    """(state dict, header metadata) of a ``.pth``/``.pt``/``.ckpt`` or ``.safetensors`` file.

    Args:
        path: The file.
        expected: What the caller wants, for the message when the file is unreadable.
        name: How messages name the file (e.g. the user's file when ``path`` is a copy of it).

    Raises CheckpointFormatError naming the file when it is missing, unreadable or not a dict.
    The values are tensors for any file written by PyTorch's trainers; callers check the keys.
    """
    path = Path(path)
    shown = path if name is None else name
    if not path.is_file():
        raise CheckpointFormatError(f"{shown}: file not found")
    if path.suffix == ".safetensors":
        tensors, meta = read_safetensors(path, name=name)
        return dict(tensors), meta
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle errors, zip errors, truncated files: all unreadable
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointFormatError(
            f"{shown}: not a readable PyTorch checkpoint ({first}); expected {expected}"
        ) from None
    if not isinstance(obj, dict):
        raise CheckpointFormatError(
            f"{shown}: holds a {type(obj).__name__}, not a dict of weights; expected {expected}"
        )
    return canonical_state_dict(obj), {}
