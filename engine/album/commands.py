"""``likeness album``: scan a folder for people, list and correct them."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Registers ``likeness album`` (filled in by the album work)."""
