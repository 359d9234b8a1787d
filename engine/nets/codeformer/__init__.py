"""CodeFormer network family: config, modules and checkpoint loading."""

from .checkpoint import identify_checkpoint, load_codeformer, save_codeformer
from .config import OFFICIAL, TINY, CodeFormerConfig
from .network import CodeFormer

__all__ = [
    "OFFICIAL",
    "TINY",
    "CodeFormer",
    "CodeFormerConfig",
    "identify_checkpoint",
    "load_codeformer",
    "save_codeformer",
]
