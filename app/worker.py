"""The engine in a QThread: one worker object, one queue, signals back to the GUI thread.

``EngineWorker`` lives in its own thread and owns the ``Restorer`` (the engine is imported
there, lazily, so the window opens before PyTorch loads). ``EngineClient`` lives in the GUI
thread: it keeps the queue (previews first, then scans, exports, then the batch), hands the
worker one job at a time and re-emits the worker's answers as signals, so widgets only ever see
signals on the GUI thread. Cancel sets the running job's event (the engine checks it between
faces) and drops the queued batch.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QObject, QThread, Signal, Slot

from engine.errors import CancelledError, LikenessError

from . import jobs, references
from .detector_process import ProcessDetector
from .imaging import THUMB_SIZE, load_result, save_result, thumbnail, to_array, to_qimage

log = logging.getLogger(__name__)

FACE_THUMB = 96
CACHED_PHOTOS = 4  # photos whose aligned faces are kept for previews
CACHED_ENCODINGS = 16  # faces whose encoder output is kept (a slider move decodes only)


class EngineWorker(QObject):
    """Runs jobs in the worker thread. Never touch it from the GUI thread except via signals."""

    job_started = Signal(object)
    job_done = Signal(object)  # the job, always emitted last
    failed = Signal(object, str, bool)  # job, message, cancelled
    progress = Signal(object, float, str)  # job, fraction, text
    engine_info = Signal(object)  # jobs.EngineInfo
    scanned = Signal(object)  # jobs.ScanOutcome
    restored = Signal(object)  # jobs.RestoreOutcome
    preview_ready = Signal(object)  # jobs.PreviewOutcome
    reference_ready = Signal(object)  # jobs.ReferenceOutcome
    matched = Signal(object)  # jobs.MatchOutcome
    exported = Signal(object, object)  # job, output path

    def __init__(self) -> None:
        super().__init__()
        self._config = jobs.Configure()
        self._restorer = None
        self._faces: OrderedDict[int, list] = OrderedDict()  # photo id -> engine FaceResults
        self._encoded: OrderedDict[tuple[int, int], object] = OrderedDict()
        self._references: dict[int, references.Reference] = {}
        self._helpers: list[ProcessDetector] = []
        self._results = Path(tempfile.mkdtemp(prefix="likeness-results-"))  # removed by close()

    # -- plumbing ------------------------------------------------------------------------------
    @Slot(object)
    def run(self, job: jobs.Job) -> None:
        handler = getattr(self, f"_run_{type(job).__name__.lower()}")
        self.job_started.emit(job)
        try:
            if job.cancel.is_set():
                raise CancelledError("cancelled")
            handler(job)
        except CancelledError:
            self.failed.emit(job, "Cancelled", True)
        except LikenessError as err:
            log.info("job %s failed: %s", job, err)
            self.failed.emit(job, str(err), False)
        except MemoryError:
            log.exception("out of memory in %s", job)
            self.failed.emit(job, "Not enough memory for this photo; try a smaller output size.", False)
        except Exception as err:  # a bug: keep the traceback in the log, tell the user briefly
            log.exception("unexpected error in %s", job)
            self.failed.emit(job, f"Unexpected error ({type(err).__name__}: {err}); details are in the log.", False)
        finally:
            self.job_done.emit(job)

    def restorer(self):
        if self._restorer is None:
            from engine.api import Restorer

            c = self._config
            self._restorer = Restorer(model=c.model, device=c.device, backend=c.backend)
            self._serve_gil_bound_detectors(self._restorer)
        return self._restorer

    def _serve_gil_bound_detectors(self, restorer) -> None:
        """dlib's CNN detector (also "auto" without RetinaFace weights) runs in a helper process."""
        self.close_helpers()
        detector = ProcessDetector("cnn")  # the process starts at the first detection
        self._helpers.append(detector)
        restorer.use_detector("cnn", detector)
        if not restorer.store.is_installed("retinaface-resnet50"):
            restorer.use_detector("auto", detector)

    def close_helpers(self) -> None:
        for helper in self._helpers:
            helper.close()
        self._helpers.clear()

    def close(self) -> None:
        """Ends the helper processes and deletes the session's results (call once the thread is gone)."""
        self.close_helpers()
        shutil.rmtree(self._results, ignore_errors=True)

    def _photo_faces(self, photo_id: int, path: Path, options) -> list:
        """The photo's faces with their alignments, cached for the last few photos."""
        if photo_id in self._faces:
            self._faces.move_to_end(photo_id)
            return self._faces[photo_id]
        from engine.imageio import read_image

        faces = self.restorer().find_faces(read_image(path).rgb, options)
        self._remember_faces(photo_id, faces)
        return faces

    def _remember_faces(self, photo_id: int, faces: list) -> None:
        self._faces[photo_id] = faces
        self._faces.move_to_end(photo_id)
        while len(self._faces) > CACHED_PHOTOS:
            old, _ = self._faces.popitem(last=False)
            for key in [k for k in self._encoded if k[0] == old]:
                del self._encoded[key]

    def _forget_cache(self) -> None:
        self._faces.clear()
        self._encoded.clear()

    @staticmethod
    def _face_infos(faces: list) -> list[jobs.FaceInfo]:
        return [
            jobs.FaceInfo(f.index, tuple(float(v) for v in f.box), float(f.detection.score),
                          thumbnail(f.aligned, FACE_THUMB), f.selected)
            for f in faces
        ]  # fmt: skip

    # -- jobs ----------------------------------------------------------------------------------
    def _run_configure(self, job: jobs.Configure) -> None:
        self._config = job
        self._restorer = None
        self._forget_cache()
        self._references.clear()
        self._report_engine()
        if self._restorer is not None:  # load the face detector while the user is still choosing photos
            try:
                detector = self._restorer.detector(job.detector)
                if isinstance(detector, ProcessDetector):
                    detector.start()
            except Exception as err:  # only a head start: the first photo loads it otherwise
                log.warning("face detector %s not loaded in advance: %s", job.detector, err)

    def _report_engine(self) -> None:
        from engine.runtime.device import available_devices

        info = jobs.EngineInfo(devices=available_devices())
        try:
            restorer = self.restorer()
            info.device, info.device_label = str(restorer.device), restorer.device_label()
            info.model = restorer.model_name
        except LikenessError as err:
            info.model_error = str(err)
            if self._restorer is None and self._config.device != "auto":  # unusable device: fall back
                self._config = replace(self._config, device="auto")
                info.model_error = f"{err} Using the automatic choice instead."
                try:
                    restorer = self.restorer()
                    info.device, info.device_label = str(restorer.device), restorer.device_label()
                    info.model = restorer.model_name
                    info.model_error = None
                except LikenessError as again:
                    info.model_error = str(again)
            elif self._restorer is not None:
                info.device, info.device_label = str(self._restorer.device), self._restorer.device_label()
        self.engine_info.emit(info)

    def _run_scan(self, job: jobs.Scan) -> None:
        from engine.imageio import read_image

        self.progress.emit(job, 0.1, "Finding faces")
        photo = read_image(job.path)
        faces = self.restorer().find_faces(photo.rgb, job.options)
        for key in [k for k in self._encoded if k[0] == job.photo_id]:  # faces may be numbered anew
            del self._encoded[key]
        self._remember_faces(job.photo_id, faces)
        h, w = photo.rgb.shape[:2]
        self.scanned.emit(jobs.ScanOutcome(job.photo_id, (w, h), self._face_infos(faces), thumbnail(photo.rgb, THUMB_SIZE)))

    def _run_restore(self, job: jobs.Restore) -> None:
        restorer = self.restorer()
        device_before = restorer.device

        def progress(p) -> None:
            self.progress.emit(job, p.fraction, p.text)

        result = restorer.restore(job.request, progress=progress, cancel=job.cancel)
        self._remember_faces(job.photo_id, result.faces)
        if restorer.device != device_before:  # fell back to the CPU: encodings live on the old device
            self._encoded.clear()
            self._report_engine()
        stored = save_result(self._results / f"{job.photo_id}-{job.id}.npy", result.image)
        self.restored.emit(jobs.RestoreOutcome(
            job.photo_id, to_qimage(result.image), self._face_infos(result.faces), result.model, result.device,
            list(result.warnings), dict(result.timings), result.output, job.request.options, stored,
        ))  # fmt: skip

    def _run_preview(self, job: jobs.Preview) -> None:
        start = time.perf_counter()
        restorer = self.restorer()
        faces = self._photo_faces(job.photo_id, job.path, job.options)
        if not 0 <= job.face_index < len(faces):
            raise LikenessError(f"{job.path.name}: face {job.face_index + 1} is not in this photo any more")
        aligned = faces[job.face_index].aligned
        key = (job.photo_id, job.face_index)
        encoded = self._encoded.get(key)
        if encoded is None:
            encoded = restorer.encode_face(aligned)
            self._encoded[key] = encoded
            while len(self._encoded) > CACHED_ENCODINGS:
                self._encoded.popitem(last=False)
        self._encoded.move_to_end(key)
        restored = restorer.decode_face(encoded, aligned, job.fidelity, job.options.color_fix)
        self.preview_ready.emit(jobs.PreviewOutcome(
            job.photo_id, job.face_index, job.fidelity, to_qimage(aligned), to_qimage(restored),
            time.perf_counter() - start,
        ))  # fmt: skip

    def _run_analysereference(self, job: jobs.AnalyseReference) -> None:
        restorer = self.restorer()
        detector = restorer.detector(job.options.detector)
        helper = detector if isinstance(detector, ProcessDetector) else None
        ref = references.analyse(job.path, restorer, job.options, helper)
        self._references[job.ref_id] = ref
        aligned = to_qimage(ref.aligned) if ref.aligned is not None else None
        note = ("Click a face in the photo to check the references against it." if references.available()
                else references.NOT_AVAILABLE)
        self.reference_ready.emit(jobs.ReferenceOutcome(job.ref_id, job.path, aligned, ref.error, note))

    def _run_matchreferences(self, job: jobs.MatchReferences) -> None:
        faces = self._photo_faces(job.photo_id, job.path, job.options)
        if not 0 <= job.face_index < len(faces):
            return
        face = faces[job.face_index]
        known = [(ref_id, self._references[ref_id]) for ref_id in job.ref_ids if ref_id in self._references]
        matches = references.match_each([ref for _, ref in known], face.aligned, face.detection.size)
        out = {ref_id: m for (ref_id, _), m in zip(known, matches)}
        self.matched.emit(jobs.MatchOutcome(job.photo_id, job.face_index, out))

    def _run_export(self, job: jobs.Export) -> None:
        from engine.errors import OutputError
        from engine.imageio import read_image, write_image

        if job.output.resolve() == job.source.resolve():
            raise OutputError(f"{job.output}: refusing to overwrite the original photo")
        like = read_image(job.source)
        rgb = to_array(job.image) if job.image is not None else load_result(job.image_file)
        write_image(job.output, rgb, like=like, quality=job.quality)
        self.exported.emit(job, job.output)


class EngineThread(QThread):
    """The worker's thread, whose event loop runs inside one Python call.

    A plain QThread gives each queued slot call a fresh Python thread state. pybind11 extensions
    (dlib, ONNX Runtime) remember the thread state they first saw on a thread, so a detector
    made in one job and used in the next crashed the process. Running ``exec`` from Python keeps
    one thread state for the thread's whole life.
    """

    def run(self) -> None:
        self.exec()


class EngineClient(QObject):
    """GUI-thread side of the worker: the queue, cancel, and signals widgets connect to."""

    _submit = Signal(object)
    busy_changed = Signal(bool)
    job_started = Signal(object)
    job_done = Signal(object)
    failed = Signal(object, str, bool)
    progress = Signal(object, float, str)
    engine_info = Signal(object)
    scanned = Signal(object)
    restored = Signal(object)
    preview_ready = Signal(object)
    reference_ready = Signal(object)
    matched = Signal(object)
    exported = Signal(object, object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._queue: list[jobs.Job] = []
        self._current: jobs.Job | None = None
        self._last: jobs.Job | None = None
        self._thread = EngineThread()
        self._thread.setObjectName("likeness-engine")
        self.worker = EngineWorker()
        self.worker.moveToThread(self._thread)
        self._thread.finished.connect(self.worker.deleteLater)
        self._submit.connect(self.worker.run)
        for name in ("job_started", "failed", "progress", "engine_info", "scanned", "restored", "preview_ready",
                     "reference_ready", "matched", "exported"):
            getattr(self.worker, name).connect(getattr(self, name))
        self.worker.job_done.connect(self._on_done)
        self._thread.start()

    @property
    def busy(self) -> bool:
        return self._current is not None

    @property
    def current(self) -> jobs.Job | None:
        return self._current

    def pending(self, kind: type | None = None) -> list[jobs.Job]:
        return [j for j in self._queue if kind is None or isinstance(j, kind)]

    def photos_in_queue(self, kind: type) -> set[int]:
        """Photo ids of the running and queued jobs of ``kind``."""
        return {j.photo_id for j in [self._current, *self.pending(kind)] if isinstance(j, kind)}

    def submit(self, job: jobs.Job) -> jobs.Job:
        if isinstance(job, jobs.Preview):  # only the newest slider position matters
            self._queue = [j for j in self._queue if not isinstance(j, jobs.Preview)]
        if isinstance(job, jobs.Configure):  # a new engine: previews and scans of the old one are stale
            self._queue = [j for j in self._queue if not isinstance(j, (jobs.Configure, jobs.Preview))]
        self._queue.append(job)
        self._dispatch()
        return job

    def cancel(self, kinds: tuple[type, ...] = (jobs.Restore,)) -> list[jobs.Job]:
        """Drops queued jobs of these kinds and stops the running one; returns the dropped jobs."""
        dropped = [j for j in self._queue if isinstance(j, kinds)]
        self._queue = [j for j in self._queue if not isinstance(j, kinds)]
        for job in dropped:
            job.cancel.set()
        if isinstance(self._current, kinds):
            self._current.cancel.set()
        return dropped

    def _dispatch(self) -> None:
        if self._current is not None or not self._queue:
            return
        candidates = self._queue
        if isinstance(self._last, jobs.Preview):  # a dragged slider must not starve the batch: alternate
            others = [j for j in self._queue if not isinstance(j, jobs.Preview)]
            candidates = others or candidates
        job = min(candidates, key=lambda j: j.priority)  # min is stable: first of equals
        self._queue.remove(job)
        self._last = job
        was_busy = self.busy
        self._current = job
        if not was_busy:
            self.busy_changed.emit(True)
        self._submit.emit(job)

    @Slot(object)
    def _on_done(self, job: jobs.Job) -> None:
        if job is self._current:
            self._current = None
        self.job_done.emit(job)
        self._dispatch()
        if self._current is None:
            self.busy_changed.emit(False)

    def shutdown(self, timeout_ms: int = 30000) -> None:
        """Cancel everything, let the running job stop at its next check, and end the thread."""
        self.cancel((jobs.Job,))
        self._thread.quit()
        if not self._thread.wait(timeout_ms):
            log.warning("the engine thread did not stop within %d ms", timeout_ms)
        else:
            self.worker.close()  # the thread is gone: safe to touch the worker here
