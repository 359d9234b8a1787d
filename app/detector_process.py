"""A face detector (and reference analysis) served by a helper process, for detectors that hold the GIL.

dlib's CNN detector keeps Python's global interpreter lock for the whole detection (seconds per
photo on a CPU), so running it in the worker thread would freeze the window meanwhile. Here it
runs in a spawned process; the worker thread waits on a pipe, which leaves the GUI thread free.
Results are the engine's own ``DetectedFace`` objects, identical to an in-thread detection.
This module imports nothing heavy; the child imports ``engine.api`` (torch only when it runs the
identity network of a reference analysis).
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import threading

log = logging.getLogger(__name__)

_CONTEXT = mp.get_context("spawn")  # never fork a process that runs Qt threads


def _serve(conn, name: str) -> None:
    from engine.api import analyse_reference, make_detector

    detector = None
    while True:
        try:
            message = conn.recv()
        except EOFError:
            return
        if message is None:
            return
        try:
            if message[0] == "detect":
                _, rgb, min_face = message
                detector = detector or make_detector(name)
                conn.send(("ok", detector.detect(rgb, min_face=min_face)))
            elif message[0] == "reference":  # the whole analysis: detection, alignment, identity
                conn.send(("ok", analyse_reference(message[1], detector=name)))
            else:
                conn.send(("error", ValueError(f"unknown request {message[0]!r}")))
        except Exception as err:  # sent back and raised in the worker thread
            conn.send(("error", err))


class ProcessDetector:
    """``detect(rgb, min_face=)`` answered by a helper process running detector ``name``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._process = None
        self._conn = None
        self._lock = threading.Lock()

    def _start(self) -> None:
        parent, child = _CONTEXT.Pipe()
        process = _CONTEXT.Process(
            target=_serve, args=(child, self.name), name=f"likeness-{self.name}-detector", daemon=True
        )
        process.start()
        child.close()
        self._process, self._conn = process, parent

    def start(self) -> None:
        """Starts the helper now (it loads the detector) instead of at the first detection."""
        with self._lock:
            if self._process is None or not self._process.is_alive():
                self._start()

    def detect(self, rgb, *, min_face: float = 32):
        return self._ask(("detect", rgb, min_face))

    def analyse_reference(self, path):
        """``engine.api.analyse_reference`` with this detector, run in the helper."""
        return self._ask(("reference", str(path)))

    def _ask(self, message):
        with self._lock:
            if self._process is None or self._conn is None or not self._process.is_alive():
                self._start()
            conn = self._conn
            assert conn is not None
            try:
                conn.send(message)
                status, value = conn.recv()
            except (EOFError, OSError, BrokenPipeError) as err:
                self._process = None
                raise RuntimeError(f"the {self.name} face detector process stopped ({err})") from err
        if status == "error":
            raise value
        return value

    def close(self) -> None:
        with self._lock:
            process, conn = self._process, self._conn
            if process is None or conn is None:
                return
            try:
                conn.send(None)
            except OSError:
                pass
            process.join(2)
            if process.is_alive():
                process.terminate()
            conn.close()
            self._process = self._conn = None
