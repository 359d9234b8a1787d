"""The engine in a QThread: one worker object that runs one job at a time and posts messages.

``EngineWorker`` lives in its own thread and owns the ``Restorer``, which it gets from a
``Backend`` (``app.backend``): ``engine.api`` in the app, a fake in most GUI tests
(``tests/app/fake_engine.py``). It chooses a handler for each job from one table and answers
with the typed messages of ``app.jobs`` on one signal, ``posted``; ``EngineClient``
(``app.client``) hands it the jobs and fans the messages out on the GUI thread.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from engine.api import (
    CancelledError,
    FaceResult,
    LikenessError,
    OutputError,
    Progress,
    read_image,
    write_image,
)

from . import jobs, references
from .backend import ApiBackend, Backend, EngineRestorer, PreviewSession
from .detector_process import ProcessDetector
from .face_memory import RememberingDetector, unwrap
from .imaging import THUMB_SIZE, load_result, save_result, thumbnail, to_array, to_qimage

log = logging.getLogger(__name__)

FACE_THUMB = 96


def face_info(face: FaceResult) -> jobs.FaceInfo:
    """What the GUI shows of a face: its box, score, a small crop and whether it was restored."""
    x0, y0, x1, y1 = (float(v) for v in face.box)
    crop = thumbnail(face.aligned, FACE_THUMB)
    affine = tuple(float(v) for v in face.affine.ravel())
    score = float(face.detection.score)
    return jobs.FaceInfo(face.index, (x0, y0, x1, y1), score, crop, face.selected, affine, face.profile)


def face_infos(faces: list[FaceResult]) -> list[jobs.FaceInfo]:
    return [face_info(f) for f in faces]


class EngineWorker(QObject):
    """Runs jobs in the worker thread. Never touch it from the GUI thread except via signals."""

    posted = Signal(object)  # one jobs.Message; JobDone is the last one of each job

    def __init__(self, backend: Backend | None = None, results: Path | None = None) -> None:
        """``results``: where restored images are kept (the session's folder, see ``app.journal``);
        a new temporary folder when None. ``close`` removes it."""
        super().__init__()
        self.backend = backend or ApiBackend()
        self._config = jobs.Configure()
        self._restorer: EngineRestorer | None = None
        self._preview: PreviewSession | None = None
        self._references: dict[int, references.Reference] = {}
        self._helpers: list[ProcessDetector] = []
        self._results = results if results is not None else Path(tempfile.mkdtemp(prefix="likeness-results-"))
        self._handlers: dict[type[jobs.Job], Callable[[Any], None]] = {
            jobs.Configure: self._configure,
            jobs.Scan: self._scan,
            jobs.Restore: self._restore,
            jobs.Preview: self._render_preview,
            jobs.AnalyseReference: self._analyse_reference,
            jobs.MatchReferences: self._match_references,
            jobs.MatchPerson: self._match_person,
            jobs.Export: self._export,
        }

    # -- plumbing ------------------------------------------------------------------------------
    @Slot(object)
    def run(self, job: jobs.Job) -> None:
        handler = self._handlers[type(job)]
        self.posted.emit(jobs.JobStarted(job))
        try:
            if job.cancel.is_set():
                raise CancelledError("cancelled")
            handler(job)
        except CancelledError:
            self.posted.emit(jobs.JobFailed(job, "Cancelled", cancelled=True))
        except LikenessError as err:
            log.info("job %s failed: %s", job, err)
            self.posted.emit(jobs.JobFailed(job, str(err)))
        except MemoryError:
            log.exception("out of memory in %s", job)
            self.posted.emit(jobs.JobFailed(job, "Not enough memory for this photo; try a smaller output size."))
        except Exception as err:  # a bug: keep the traceback in the log, tell the user briefly
            log.exception("unexpected error in %s", job)
            text = f"Unexpected error ({type(err).__name__}: {err}); details are in the log."
            self.posted.emit(jobs.JobFailed(job, text))
        finally:
            self.posted.emit(jobs.JobDone(job))

    def restorer(self) -> EngineRestorer:
        if self._restorer is None:
            self._restorer = self.backend.restorer(self._config)
            self._preview = self._restorer.preview()
            self._serve_gil_bound_detectors(self._restorer)
        return self._restorer

    def remembering(self, name: str) -> object:
        """The restorer's detector ``name``, made to remember each photo's faces (see app.face_memory)."""
        restorer = self.restorer()
        detector = restorer.detector(name)
        if not isinstance(detector, RememberingDetector):
            detector = RememberingDetector(detector)  # type: ignore[arg-type]
            restorer.use_detector(name, detector)
        return detector

    def face_preview(self) -> PreviewSession:
        self.restorer()
        assert self._preview is not None
        return self._preview

    def _serve_gil_bound_detectors(self, restorer: EngineRestorer) -> None:
        """Detectors that hold the GIL (dlib's CNN) run in a helper process, started at first use."""
        self.close_helpers()
        for name in restorer.gil_bound_detectors():
            helper = ProcessDetector(name)
            self._helpers.append(helper)
            restorer.use_detector(name, helper)

    def close_helpers(self) -> None:
        for helper in self._helpers:
            helper.close()
        self._helpers.clear()

    def close(self) -> None:
        """Ends the helper processes and deletes the session's results (call once the thread is gone)."""
        self.close_helpers()
        shutil.rmtree(self._results, ignore_errors=True)

    # -- jobs ----------------------------------------------------------------------------------
    def _configure(self, job: jobs.Configure) -> None:
        self._config = job
        self._restorer = self._preview = None
        self._references.clear()
        self._report_engine()
        if self._restorer is not None:  # load the face detector while the user is still choosing photos
            try:
                detector = unwrap(self.remembering(job.detector))
                if isinstance(detector, ProcessDetector):
                    detector.start()
            except Exception as err:  # only a head start: the first photo loads it otherwise
                log.warning("face detector %s not loaded in advance: %s", job.detector, err)

    def _report_engine(self) -> None:
        devices = tuple(self.backend.available_devices())
        try:
            restorer = self.restorer()
        except LikenessError as err:  # the chosen device cannot be used: fall back to the automatic choice
            if self._config.device == "auto":
                self.posted.emit(jobs.EngineInfo(devices=devices, model_error=str(err)))
                return
            self._config = replace(self._config, device="auto")
            try:
                restorer = self.restorer()
            except LikenessError as again:
                self.posted.emit(jobs.EngineInfo(devices=devices, model_error=str(again)))
                return
        try:
            status = restorer.status()
        except LikenessError as err:  # no restoration model: faces are still found
            device, label = str(restorer.device), restorer.device_label()
            self.posted.emit(jobs.EngineInfo(device, label, devices, model_error=str(err)))
            return
        self.posted.emit(jobs.EngineInfo(status.device, status.device_label, devices, status.model))

    def _scan(self, job: jobs.Scan) -> None:
        self.posted.emit(jobs.JobProgress(job, 0.1, "Finding faces"))
        photo = read_image(job.path)
        self.remembering(job.options.detector)
        faces = self.restorer().find_faces(photo.rgb, job.options)
        self.face_preview().remember(job.photo_id, faces)  # drops the photo's encodings: faces may be renumbered
        h, w = photo.rgb.shape[:2]
        self.posted.emit(jobs.Scanned(job.photo_id, (w, h), face_infos(faces), thumbnail(photo.rgb, THUMB_SIZE)))

    def _restore(self, job: jobs.Restore) -> None:
        restorer = self.restorer()
        self.remembering(job.request.options.detector)  # the faces the scan found: not detected again
        device_before = restorer.device

        def progress(p: Progress) -> None:
            self.posted.emit(jobs.JobProgress(job, p.fraction, p.text))

        result = restorer.restore(job.request, progress=progress, cancel=job.cancel)
        self.face_preview().remember(job.photo_id, result.faces)
        if restorer.device != device_before:  # fell back to the CPU (the preview re-encodes on its own)
            self._report_engine()
        stored = save_result(self._results / f"{job.photo_id}-{job.id}.npy", result.image)
        self.posted.emit(
            jobs.Restored(
                job.photo_id,
                to_qimage(result.image),
                face_infos(result.faces),
                result.model,
                result.device,
                list(result.warnings),
                dict(result.timings),
                result.output,
                job.request.options,
                stored,
            )
        )

    def _render_preview(self, job: jobs.Preview) -> None:
        start = time.perf_counter()
        self.remembering(job.options.detector)
        preview = self.face_preview()
        aligned, restored = preview.render(job.photo_id, job.path, job.face_index, job.fidelity, job.options)
        seconds = time.perf_counter() - start
        before, after = to_qimage(aligned), to_qimage(restored)
        self.posted.emit(jobs.PreviewReady(job.photo_id, job.face_index, job.fidelity, before, after, seconds))

    def _analyse_reference(self, job: jobs.AnalyseReference) -> None:
        restorer = self.restorer()
        detector = unwrap(restorer.detector(job.options.detector))
        helper = detector if isinstance(detector, ProcessDetector) else None
        ref = references.analyse(job.path, restorer, job.options.detector, helper)
        self._references[job.ref_id] = ref
        aligned = to_qimage(ref.aligned) if ref.aligned is not None else None
        note = "Click a face in the photo to check the references against it."
        self.posted.emit(jobs.ReferenceReady(job.ref_id, job.path, aligned, ref.error, note))

    def _match_references(self, job: jobs.MatchReferences) -> None:
        self.remembering(job.options.detector)
        faces = self.face_preview().faces(job.photo_id, job.path, job.options)
        if not 0 <= job.face_index < len(faces):
            return
        face = faces[job.face_index]
        known = [(ref_id, self._references[ref_id]) for ref_id in job.ref_ids if ref_id in self._references]
        matches = references.match_each(
            [ref for _, ref in known], face.aligned, self.backend.check_against, face.detection.size
        )
        out = {ref_id: m for (ref_id, _), m in zip(known, matches, strict=True)}
        self.posted.emit(jobs.Matched(job.photo_id, job.face_index, out))

    def _match_person(self, job: jobs.MatchPerson) -> None:
        """Every face of the photos whose check says it is the references' person: at least half of
        the verdicts that can be told are a match (one wrong reference among several does not hide
        the person; the engine then uses only the references that match each face)."""
        self.remembering(job.options.detector)  # the faces found when the photos were added
        known = [self._references[i] for i in job.ref_ids if i in self._references]
        found: set[tuple[int, int]] = set()
        checked = 0
        for n, (photo_id, path) in enumerate(job.photos):
            if job.cancel.is_set():
                raise CancelledError("cancelled")
            self.posted.emit(jobs.JobProgress(job, n / max(1, len(job.photos)), f"Checking {path.name}"))
            for face in self.face_preview().faces(photo_id, path, job.options):
                checked += 1
                matches = references.match_each(known, face.aligned, self.backend.check_against, face.detection.size)
                verdicts = [m.good for m in matches if m.good is not None]
                if verdicts and 2 * sum(verdicts) >= len(verdicts):
                    found.add((photo_id, face.index))
        self.posted.emit(jobs.PersonMatched(job, frozenset(found), checked))

    def _export(self, job: jobs.Export) -> None:
        if job.output.resolve() == job.source.resolve():
            raise OutputError(f"{job.output}: refusing to overwrite the original photo")
        like = read_image(job.source)
        if job.image is not None:
            rgb = to_array(job.image)
        elif job.image_file is not None:
            rgb = load_result(job.image_file)
        else:
            raise OutputError(f"{job.source.name}: there is no restored image to export")
        write_image(job.output, rgb, like=like, quality=job.quality)
        self.posted.emit(jobs.Exported(job, job.output))


class EngineThread(QThread):
    """The worker's thread, whose event loop runs inside one Python call.

    A plain QThread gives each queued slot call a fresh Python thread state. pybind11 extensions
    (dlib, ONNX Runtime) remember the thread state they first saw on a thread, so a detector
    made in one job and used in the next crashed the process. Running ``exec`` from Python keeps
    one thread state for the thread's whole life.
    """

    def run(self) -> None:
        self.exec()
