"""Identity embeddings for losses and checks behind one interface (``make_embedder().embed``).

The default backend is dlib's face-recognition ResNet, differentiable in torch.

The network and weights are dlib's (Davis E. King, dlib.net, Boost Software License; the
trained model is public domain per the dlib-models README). Weights are read from the
``face_recognition_models`` package's ``.dat`` by our own parser and cached as safetensors.
"""

from .chip import CHIP_SIZE, chip_from_aligned, chip_to_ffhq_affine
from .dlib_format import DlibLayer, DlibNet, parse_dlib_dnn
from .embedders import (
    DEFAULT_EMBEDDER,
    EVALUATOR,
    IdentityEmbedder,
    embedder_names,
    make_embedder,
    register_embedder,
    similarity,
)
from .dlib_resnet import (
    DlibFaceEmbedder,
    descriptor_from_chip,
    find_dlib_model,
    load_dlib_embedder,
    normalize_descriptor,
)

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
