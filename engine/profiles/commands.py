"""``likeness profile``: create, list, show, train and delete person profiles."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Registers ``likeness profile``."""
