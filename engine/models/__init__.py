"""Model catalogue, user model store, verified downloads and imports.

Code asks for a model by name (``ModelStore().path("codeformer")``); nothing here touches the
network unless ``ModelStore.install`` is called.
"""

from engine.models.catalogue import Kind, ModelRecord, load_catalogue
from engine.models.store import ModelStore, default_root

__all__ = ["Kind", "ModelRecord", "ModelStore", "default_root", "load_catalogue"]
