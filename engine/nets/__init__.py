"""Networks of the engine. Each family lives in its own module with config and loader;
``registry`` knows them all: which one a weights file holds, and how to build it."""

from pathlib import Path

from .registry import ARCHITECTURES, Architecture, NetDescriptor, describe_file, identify_file


def identify_checkpoint(path: str | Path) -> str | None:
    """Architecture id of the network a weights file holds (``"codeformer"``), or None (never raises)."""
    descriptor = identify_file(path)
    return None if descriptor is None else descriptor.arch


__all__ = ["ARCHITECTURES", "Architecture", "NetDescriptor", "describe_file", "identify_checkpoint", "identify_file"]
