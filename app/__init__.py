"""Likeness desktop app (PySide6). Talks to the engine only through engine.api, from a worker thread."""
