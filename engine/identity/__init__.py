"""Identity embeddings for losses and checks behind one interface (``make_embedder().embed``).

The default backend is dlib's face-recognition ResNet, differentiable in torch.

The network and weights are dlib's (Davis E. King, dlib.net, Boost Software License; the
trained model is public domain per the dlib-models README). Weights are read from the
``face_recognition_models`` package's ``.dat`` by our own parser and cached as safetensors.

Importing this package is cheap: the backend registry (``backends``) is loaded at once, every
other name on first use, so a package can register a backend without importing torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .backends import DEFAULT_EMBEDDER, EVALUATOR, embedder_names, make_embedder, register_embedder

if TYPE_CHECKING:
    from .chip import CHIP_SIZE, chip_from_aligned, chip_to_ffhq_affine
    from .dlib_format import DlibLayer, DlibNet, parse_dlib_dnn
    from .dlib_resnet import (
        DlibFaceEmbedder,
        descriptor_from_chip,
        find_dlib_model,
        load_dlib_embedder,
        normalize_descriptor,
    )
    from .embedders import IdentityEmbedder, similarity

# name -> module that defines it, imported on first access (they import torch)
_LAZY = {
    "CHIP_SIZE": "chip",
    "chip_from_aligned": "chip",
    "chip_to_ffhq_affine": "chip",
    "DlibLayer": "dlib_format",
    "DlibNet": "dlib_format",
    "parse_dlib_dnn": "dlib_format",
    "DlibFaceEmbedder": "dlib_resnet",
    "descriptor_from_chip": "dlib_resnet",
    "find_dlib_model": "dlib_resnet",
    "load_dlib_embedder": "dlib_resnet",
    "normalize_descriptor": "dlib_resnet",
    "IdentityEmbedder": "embedders",
    "similarity": "embedders",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "DEFAULT_EMBEDDER",
    "EVALUATOR",
    "IdentityEmbedder",
    "embedder_names",
    "make_embedder",
    "register_embedder",
    "similarity",
    "CHIP_SIZE",
    "DlibFaceEmbedder",
    "DlibLayer",
    "DlibNet",
    "chip_from_aligned",
    "chip_to_ffhq_affine",
    "descriptor_from_chip",
    "find_dlib_model",
    "load_dlib_embedder",
    "normalize_descriptor",
    "parse_dlib_dnn",
]
