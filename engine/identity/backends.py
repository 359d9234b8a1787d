"""The identity backends by name: ``make_embedder(name)``, and ``register_embedder`` to add one.

Importing this module costs nothing (no torch, no network): a package can register a backend
at its own import and stay cheap to import, as ``training.judges`` does for the evaluation-only
networks. The engine's own backends (dlib in ``embedders``, ``arcface``) register themselves when
``ENGINE_BACKENDS`` are imported, on the first ``make_embedder``/``embedder_names`` call: this
module names them and never imports them, so they can import it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import ModelMissingError

if TYPE_CHECKING:
    import torch

    from .embedders import IdentityEmbedder

#: factory(device, store) -> backend; ``store`` is a ``ModelStore`` or None (the user's).
EmbedderFactory = Callable[[Any, Any], "IdentityEmbedder"]

DEFAULT_EMBEDDER = "dlib"
EVALUATOR = "evaluator"
#: The independent networks evaluation judges with: registered by ``training.judges``, not here.
JUDGES = ("mobileface", "faceres", "faceres-pool", EVALUATOR)
#: Engine modules that register backends when imported (kept lazy: they cost imports).
ENGINE_BACKENDS = ("embedders", "arcface")

_FACTORIES: dict[str, EmbedderFactory] = {}
_CACHE: dict[tuple[str, str], IdentityEmbedder] = {}


def register_embedder(name: str, factory: EmbedderFactory) -> None:
    """Make ``make_embedder(name)`` build ``factory(device, store)``."""
    _FACTORIES[name] = factory


def embedder_names() -> list[str]:
    _load_optional_backends()
    return sorted(_FACTORIES)


def make_embedder(
    name: str = DEFAULT_EMBEDDER, device: str | torch.device = "cpu", store: Any = None
) -> IdentityEmbedder:
    """The named backend on ``device`` (cached: networks are frozen and shared).

    ``store`` is the ``ModelStore`` backends with installed weights read from (the user's when
    None; a backend built for a given store is not cached). ModelMissingError for a name nobody
    registered, saying where the evaluation judges live when it is one of them.
    """
    import torch

    _load_optional_backends()
    if name not in _FACTORIES:
        if name in JUDGES:
            raise ModelMissingError(
                f"Identity network '{name}' is one of the evaluation judges, which live in the training "
                "package (training.judges): import training first (the `likeness eval` and `python -m "
                "training...` commands do), then ask for it again."
            )
        raise ModelMissingError(f"Unknown identity network '{name}'. Known: {', '.join(sorted(_FACTORIES))}.")
    key = (name, str(torch.device(device)))
    if store is not None or key not in _CACHE:
        emb = _FACTORIES[name](device, store)
        if store is not None:
            return emb
        _CACHE[key] = emb
    return _CACHE[key]


def _load_optional_backends() -> None:
    """Import the modules that register the further backends."""
    for module in ENGINE_BACKENDS:
        try:
            importlib.import_module(f"{__package__}.{module}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__package__}.{module}":
                raise
