"""``likeness eval``: score restoration methods on paired LQ/HQ face sets and write a report.

A *set* is a folder written by ``training.degrade.write_paired_set``: ``hq/``, ``lq/``,
``params.jsonl`` and ``references.json`` (other photos of the same identity). Sets are built
from the aligned-face cache (``training.face_import``) of the held-out identities, one per
preset (``build_sets``), at 512² like the faces the engine restores, so the presets' ranges mean
what they mean in the CodeFormer paper (r = 16 leaves a 32 px face).

Every method maps the list of LQ faces (512²) to restored faces; the baselines are always
included: ``input`` (the LQ itself) and ``bicubic+unsharp`` (the LQ brought back to its
degraded size, bicubic up, unsharp mask). Models run through the engine's ``Restorer``.
Metrics (``METRICS``) are computed at ``EVAL_SIZE`` (256²; the faces in the shared data are
rarely sharper than that, so the 512² ground truth is itself an enlargement):

* ``psnr_y``/``ssim_y`` on BT.601 luma and ``psnr``/``ssim`` on RGB (basicsr's definitions,
  ``training.metrics``); PSNR of identical images is capped at ``PSNR_CAP``.
* ``ids_<net>``: cosine of identity embeddings output ↔ ground truth, for the independent
  evaluator and for dlib (what training optimises), ``idsref_<net>`` output ↔ first reference.
* ``lmd``: mean distance of dlib's 68 landmarks output ↔ ground truth over the inter-ocular
  distance (in %), the predictor placed on the ground truth's face box for both.
* ``niqe``: no-reference naturalness with the faces' own pristine model (``training.niqe``).
* LPIPS and FID need pretrained weights; they are reported as skipped unless installed.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from engine.errors import LikenessError, ModelMissingError
from engine.imageio import read_image, write_image

from . import metrics
from .degrade import atomic_write, write_paired_set
from .face_import import DEFAULT_TEST_LIST, read_index, split_identities

log = logging.getLogger(__name__)

EVAL_SIZE = 256
SET_SIZE = 512
PSNR_CAP = 60.0
BASELINES = ("input", "bicubic+unsharp")
DEFAULT_PRESETS = ("mild", "moderate", "severe")
IDENTITY_NETS = ("evaluator", "dlib")
# metric -> (label, higher is better)
METRICS: dict[str, tuple[str, bool]] = {
    "psnr_y": ("PSNR-Y", True), "ssim_y": ("SSIM-Y", True), "psnr": ("PSNR", True), "ssim": ("SSIM", True),
    "ids_evaluator": ("IDS (evaluator)", True), "ids_mobileface": ("IDS (mobileface)", True),
    "ids_faceres-pool": ("IDS (faceres-pool)", True), "ids_dlib": ("IDS (dlib)", True),
    "idsref_evaluator": ("IDS(REF) (evaluator)", True), "idsref_dlib": ("IDS(REF) (dlib)", True),
    "lmd": ("LMD %", False), "niqe": ("NIQE", False), "lpips": ("LPIPS", False),
}
Method = Callable[[list[np.ndarray], list[dict]], list[np.ndarray]]


# ---------------------------------------------------------------------------------------
# Sets


@dataclass
class PairedSet:
    """A paired set on disk (see module docstring)."""

    root: Path
    records: list[dict]
    references: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def open(cls, root: str | os.PathLike[str], limit: int | None = None) -> "PairedSet":
        root = Path(root)
        params = root / "params.jsonl"
        if not params.is_file():
            raise LikenessError(f"{root}: not a paired set (no params.jsonl); build one with `likeness eval --faces`")
        records = [json.loads(line) for line in params.read_text(encoding="utf-8").splitlines() if line.strip()]
        refs_file = root / "references.json"
        refs = json.loads(refs_file.read_text(encoding="utf-8")) if refs_file.is_file() else {}
        return cls(root, records[:limit] if limit else records, refs)

    @property
    def names(self) -> list[str]:
        return [r["name"] for r in self.records]

    def hq(self, name: str) -> np.ndarray:
        return read_image(self.root / "hq" / f"{name}.png").rgb

    def lq(self, name: str) -> np.ndarray:
        return read_image(self.root / "lq" / f"{name}.png").rgb


def build_sets(cache: str | os.PathLike[str], out: str | os.PathLike[str], *, test_list: str | os.PathLike[str],
               presets: Sequence[str] = DEFAULT_PRESETS, per_identity: int | None = 2, seed: int = 0,
               refs_per_identity: int = 5) -> dict[str, Path]:
    """One paired set per preset from the held-out identities of a face cache (skipped if present).

    ``per_identity`` photos of each identity are restored; references are chosen among all of
    that identity's photos (never the photo itself).
    """
    records = read_index(cache)
    _, test = split_identities(records, test_list)
    if not test:
        raise LikenessError(f"{cache}: no face of the held-out identities in {test_list}")
    by_id: dict[str, list] = {}
    for r in sorted(test, key=lambda r: r.name):
        by_id.setdefault(r.identity, []).append(r)
    items = []
    for identity, recs in sorted(by_id.items()):
        chosen = recs if per_identity is None else recs[:per_identity]
        items += [(Path(cache) / r.path_suffix, identity) for r in chosen]
    sets = {}
    for preset in presets:
        root = Path(out) / preset
        if not (root / "params.jsonl").is_file():
            log.info("building the %s set (%d faces) in %s", preset, len(items), root)
            write_paired_set(items, root, preset, seed, size=SET_SIZE, refs_per_identity=None)
            _add_references(root, cache, by_id, refs_per_identity, seed)
        sets[preset] = root
    return sets


def _add_references(root: Path, cache: str | os.PathLike[str], by_id: dict[str, list], count: int, seed: int) -> None:
    """references.json lists other sharp photos of the identity, copied into ``refs/`` at 512²."""
    (root / "refs").mkdir(exist_ok=True)
    params = [json.loads(x) for x in (root / "params.jsonl").read_text(encoding="utf-8").splitlines() if x.strip()]
    refs: dict[str, list[str]] = {}
    for rec in params:
        source_stem = Path(rec["source"]).stem
        others = [r for r in by_id[rec["identity"]] if Path(r.name).name != source_stem]
        others.sort(key=lambda r: -r.sharpness)
        names = []
        for r in others[:count]:
            ref_name = r.name.replace("/", "_")
            target = root / "refs" / f"{ref_name}.png"
            if not target.exists():
                img = read_image(Path(cache) / r.path_suffix).rgb
                write_image(target, cv2.resize(img, (SET_SIZE, SET_SIZE), interpolation=cv2.INTER_CUBIC))
            names.append(ref_name)
        refs[rec["name"]] = names
    atomic_write(root / "references.json", (json.dumps(refs, indent=1, sort_keys=True) + "\n").encode("utf-8"))


# ---------------------------------------------------------------------------------------
# Methods


def input_method(lq: list[np.ndarray], records: list[dict]) -> list[np.ndarray]:
    return list(lq)


def bicubic_unsharp(lq: list[np.ndarray], records: list[dict]) -> list[np.ndarray]:
    """The classical fix: back to the degraded size, bicubic up, unsharp mask (amount 0.8, σ ∝ r)."""
    out = []
    for img, rec in zip(lq, records):
        h, w = rec.get("lq_size") or img.shape[:2]
        small = cv2.resize(img, (int(w), int(h)), interpolation=cv2.INTER_AREA)
        up = cv2.resize(small, img.shape[1::-1], interpolation=cv2.INTER_CUBIC).astype(np.float32)
        sigma = max(1.0, img.shape[1] / float(w) / 2)
        blur = cv2.GaussianBlur(up, (0, 0), sigma)
        out.append(np.clip(up + 0.8 * (up - blur), 0, 255).astype(np.uint8))
    return out


def make_restorer(model: str, *, device: str = "auto", backend: str = "auto", fidelity_path: str | None = "auto"):
    """An engine Restorer for a model name, or for a weights file (imported into a private store).

    ``fidelity_path``: as ``Restorer(fidelity=...)``; None = the generative network alone.
    """
    import tempfile

    from engine.api import Restorer
    from engine.models import ModelStore

    path = Path(model)
    if not path.is_file():
        return Restorer(model=model, device=device, backend=backend, fidelity=fidelity_path)
    store = ModelStore(Path(tempfile.mkdtemp(prefix="likeness-eval-")) / "models")
    record = store.import_file(path, name=path.stem.replace(" ", "_"))
    return Restorer(model=record.id, device=device, store=store, backend=backend, fidelity=fidelity_path)


def model_method(model: str, *, fidelity: float = 0.5, device: str = "auto", backend: str = "auto",
                 batch: int = 4, fidelity_path: str | None = "auto") -> tuple[str, Method]:
    """(label, method) restoring with an engine model by name or weights file.

    The label names the fidelity path when it is used: "likeness-lite + likeness-fidelity (w=0.5)".
    """
    restorer = make_restorer(model, device=device, backend=backend, fidelity_path=fidelity_path)
    paths = restorer.model_name + (f" + {restorer.fidelity_model}" if restorer.fidelity_model else "")

    def run(lq: list[np.ndarray], records: list[dict]) -> list[np.ndarray]:
        out = []
        for i in range(0, len(lq), batch):
            out += restorer.restore_faces(list(lq[i:i + batch]), fidelity)
        return out

    return f"{paths} (w={fidelity:g})", run


# ---------------------------------------------------------------------------------------
# Metrics


def to_eval_size(img: np.ndarray) -> np.ndarray:
    if img.shape[0] == EVAL_SIZE:
        return img
    interp = cv2.INTER_AREA if img.shape[0] > EVAL_SIZE else cv2.INTER_CUBIC
    return cv2.resize(img, (EVAL_SIZE, EVAL_SIZE), interpolation=interp)


def capped_psnr(a: np.ndarray, b: np.ndarray, **kw) -> float:
    value = metrics.psnr(a, b, **kw)
    return PSNR_CAP if not math.isfinite(value) else min(value, PSNR_CAP)


class Landmarks68:
    """dlib's 68-point predictor on aligned faces; the box comes from the ground truth."""

    def __init__(self) -> None:
        import dlib

        from engine.faces.detect import dlib_model_path

        self._dlib = dlib
        self._predictor = dlib.shape_predictor(str(dlib_model_path("shape_predictor_68_face_landmarks.dat")))
        self._hog = dlib.get_frontal_face_detector()

    def box(self, face: np.ndarray):
        rects = self._hog(face, 0)
        if len(rects):
            return max(rects, key=lambda r: r.area())
        s = face.shape[0] / 512  # where the FFHQ template puts a frontal face's dlib box
        return self._dlib.rectangle(round(120 * s), round(150 * s), round(392 * s), round(420 * s))

    def points(self, face: np.ndarray, box) -> np.ndarray:
        shape = self._predictor(np.ascontiguousarray(face), box)
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)


def landmark_distance(pred: np.ndarray, truth: np.ndarray) -> float:
    """Mean point distance over the inter-ocular distance of ``truth`` (eye centres), in %."""
    iod = np.linalg.norm(truth[36:42].mean(0) - truth[42:48].mean(0))
    return float(np.linalg.norm(pred - truth, axis=1).mean() / max(iod, 1e-6) * 100)


def _lpips_network():
    """(LPIPS-AlexNet, None) when the lpips package and its AlexNet weights are installed, else (None, why)."""
    try:
        import lpips  # noqa: F401
    except ImportError:
        return None, "needs the lpips package and pretrained AlexNet weights, which are not installed (no download here)"
    import torch

    hub = Path(torch.hub.get_dir()) / "checkpoints"
    if not any(hub.glob("alexnet-*.pth")):
        return None, f"the lpips package is installed but the AlexNet weights are not (expected in {hub})"
    return lpips.LPIPS(net="alex", verbose=False).eval(), None


def _lpips_distance(net, a: np.ndarray, b: np.ndarray) -> float:
    import torch

    def t(x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(x).permute(2, 0, 1)[None].float() / 127.5 - 1

    with torch.no_grad():
        return float(net(t(a), t(b)).item())


class Scorer:
    """Computes every available metric; unavailable ones are listed in ``skipped`` with a reason."""

    def __init__(self, identity_nets: Sequence[str] = IDENTITY_NETS, device: str = "cpu") -> None:
        from engine.identity import make_embedder

        self.skipped: dict[str, str] = {}
        self.embedders = {}
        for name in identity_nets:
            try:
                self.embedders[name] = make_embedder(name, device)
            except (ModelMissingError, LikenessError) as exc:
                self.skipped[f"ids_{name}"] = str(exc)
        try:
            self.landmarks = Landmarks68()
        except Exception as exc:  # dlib or its model missing
            self.landmarks = None
            self.skipped["lmd"] = f"dlib 68-point predictor unavailable: {exc}"
        from . import niqe

        try:
            self.niqe_model = niqe.load_model()
        except FileNotFoundError as exc:
            self.niqe_model = None
            self.skipped["niqe"] = str(exc)
        self.lpips, reason = _lpips_network()
        if self.lpips is None:
            self.skipped["lpips"] = reason
        self.skipped["fid"] = ("needs pretrained Inception-v3 weights (pt_inception-2015-12-05), which are not installed "
                               "and cannot be downloaded here")

    def embed(self, faces: list[np.ndarray]) -> dict[str, np.ndarray]:
        return {name: emb.embed_images(faces) for name, emb in self.embedders.items()}

    def score(self, outs: list[np.ndarray], gts: list[np.ndarray], gt_emb: dict[str, np.ndarray],
              ref_emb: dict[str, np.ndarray | None], gt_landmarks: list) -> list[dict[str, float]]:
        from . import niqe

        outs = [to_eval_size(o) for o in outs]
        out_emb = self.embed(outs)
        rows = []
        for i, (out, gt) in enumerate(zip(outs, gts)):
            row = {
                "psnr_y": capped_psnr(out, gt, y_channel=True), "ssim_y": metrics.ssim(out, gt, y_channel=True),
                "psnr": capped_psnr(out, gt), "ssim": metrics.ssim(out, gt),
            }
            for name, emb in out_emb.items():
                row[f"ids_{name}"] = float(np.dot(emb[i], gt_emb[name][i]))
                ref = ref_emb[name][i]
                if ref is not None:
                    row[f"idsref_{name}"] = float(np.dot(emb[i], ref))
            if self.landmarks is not None:
                box, truth = gt_landmarks[i]
                row["lmd"] = landmark_distance(self.landmarks.points(out, box), truth)
            if self.niqe_model is not None:
                row["niqe"] = niqe.niqe(out, self.niqe_model)
            if self.lpips is not None:
                row["lpips"] = _lpips_distance(self.lpips, out, gt)
            rows.append(row)
        return rows


# ---------------------------------------------------------------------------------------
# Running


@dataclass
class MethodResult:
    method: str
    rows: list[dict]  # per image: name + metrics
    seconds_per_face: float
    samples: dict[str, np.ndarray] = field(default_factory=dict)  # name -> output at EVAL_SIZE


def evaluate_set(pset: PairedSet, methods: dict[str, Method], scorer: Scorer, *, batch: int = 16,
                 keep_samples: int = 6, progress: Callable[[str], None] | None = None) -> dict[str, MethodResult]:
    """Run every method on every LQ face of ``pset`` and score it against the ground truth."""
    results = {m: MethodResult(m, [], 0.0) for m in methods}
    elapsed = dict.fromkeys(methods, 0.0)
    sample_names = set(pset.names[:keep_samples])
    for start in range(0, len(pset.records), batch):
        recs = pset.records[start:start + batch]
        names = [r["name"] for r in recs]
        gts = [to_eval_size(pset.hq(n)) for n in names]
        lqs = [pset.lq(n) for n in names]
        gt_emb = scorer.embed(gts)
        refs = [pset.references.get(n, []) for n in names]
        ref_imgs = [to_eval_size(read_image(pset.root / "refs" / f"{r[0]}.png").rgb) if r else None for r in refs]
        ref_emb: dict[str, list] = {}
        have = [im for im in ref_imgs if im is not None]
        for net, vecs in (scorer.embed(have) if have else {}).items():
            it = iter(vecs)
            ref_emb[net] = [next(it) if im is not None else None for im in ref_imgs]
        for net in scorer.embedders:
            ref_emb.setdefault(net, [None] * len(names))
        gt_lms = []
        if scorer.landmarks is not None:
            for gt in gts:
                box = scorer.landmarks.box(gt)
                gt_lms.append((box, scorer.landmarks.points(gt, box)))
        for label, method in methods.items():
            t0 = time.perf_counter()
            outs = method(lqs, recs)
            elapsed[label] += time.perf_counter() - t0
            rows = scorer.score(outs, gts, gt_emb, ref_emb, gt_lms)
            for name, row, out in zip(names, rows, outs):
                results[label].rows.append({"name": name, **row})
                if name in sample_names:
                    results[label].samples[name] = to_eval_size(out)
        if progress:
            progress(f"{min(start + batch, len(pset.records))}/{len(pset.records)} faces")
    for label in methods:
        results[label].seconds_per_face = elapsed[label] / max(len(pset.records), 1)
    return results


def summarize(rows: list[dict]) -> dict[str, dict[str, float]]:
    """metric -> {mean, std, n} over the rows that have it."""
    out = {}
    for key in METRICS:
        vals = np.array([r[key] for r in rows if key in r and r[key] is not None], dtype=np.float64)
        if vals.size:
            out[key] = {"mean": float(vals.mean()), "std": float(vals.std()), "n": int(vals.size)}
    return out


# ---------------------------------------------------------------------------------------
# Report


def contact_sheet(pset: PairedSet, results: dict[str, MethodResult], path: Path, tile: int = 128) -> Path:
    """LQ | methods… | GT for the kept samples, labelled, written atomically as PNG."""
    names = [n for n in pset.names if all(n in r.samples for r in results.values())]
    columns = ["LQ"] + [m for m in results if m != "input"] + ["GT"]
    header = 28
    sheet = np.full((header + tile * len(names), tile * len(columns), 3), 255, np.uint8)
    for c, label in enumerate(columns):
        text = label if len(label) <= 18 else label[:17] + "…"
        cv2.putText(sheet, text.replace("…", "."), (c * tile + 4, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (20, 20, 20), 1,
                    cv2.LINE_AA)
    for r, name in enumerate(names):
        tiles = [to_eval_size(pset.lq(name))] + [results[m].samples[name] for m in columns[1:-1]]
        tiles.append(to_eval_size(pset.hq(name)))
        for c, img in enumerate(tiles):
            y = header + r * tile
            sheet[y:y + tile, c * tile:(c + 1) * tile] = cv2.resize(img, (tile, tile), interpolation=cv2.INTER_AREA)
    if path.exists():
        path.unlink()
    write_image(path, sheet)
    return path


def _fmt(stat: dict | None, key: str) -> str:
    if stat is None:
        return "—"
    digits = 2 if key.startswith("psnr") or key in ("lmd", "niqe") else 3
    return f"{stat['mean']:.{digits}f} ± {stat['std']:.{digits}f}"


def write_report(out: Path, by_preset: dict[str, dict[str, MethodResult]], sets: dict[str, PairedSet],
                 skipped: dict[str, str], meta: dict) -> tuple[Path, Path]:
    """report.md + report.json (+ contact_<preset>.png) in ``out``, each written atomically."""
    out.mkdir(parents=True, exist_ok=True)
    data = {"meta": meta, "skipped": skipped, "presets": {}}
    md = ["# Likeness evaluation report", ""]
    md += [f"- {k}: {v}" for k, v in meta.items()]
    md += ["", "Mean ± std over the faces of each set; ↑ higher is better, ↓ lower is better. "
           f"Metrics at {EVAL_SIZE}²; PSNR capped at {PSNR_CAP:g} dB. IDS = cosine to the ground truth, "
           "IDS(REF) = cosine to the first reference photo; evaluator = independent network, dlib = the "
           "network training optimises (compressed scale: different people ≈ 0.82).", ""]
    present = [k for k in METRICS if any(k in summarize(r.rows) for res in by_preset.values() for r in res.values())]
    for preset, results in by_preset.items():
        summaries = {m: summarize(r.rows) for m, r in results.items()}
        sheet = contact_sheet(sets[preset], results, out / f"contact_{preset}.png")
        data["presets"][preset] = {
            "set": str(sets[preset].root), "faces": len(sets[preset].records),
            "methods": {m: {"summary": summaries[m], "seconds_per_face": r.seconds_per_face, "rows": r.rows}
                        for m, r in results.items()},
            "contact_sheet": sheet.name,
        }
        md += [f"## {preset} ({len(sets[preset].records)} faces)", ""]
        md += ["| method | " + " | ".join(f"{METRICS[k][0]} {'↑' if METRICS[k][1] else '↓'}" for k in present) + " | s/face |"]
        md += ["|---" * (len(present) + 2) + "|"]
        for m in results:
            md += [f"| {m} | " + " | ".join(_fmt(summaries[m].get(k), k) for k in present)
                   + f" | {results[m].seconds_per_face:.3f} |"]
        md += ["", f"![contact sheet]({sheet.name})", ""]
        md += ["<details><summary>per-image rows</summary>", ""]
        md += ["| image | method | " + " | ".join(METRICS[k][0] for k in present) + " |"]
        md += ["|---" * (len(present) + 2) + "|"]
        for m, r in results.items():
            for row in r.rows:
                md += [f"| {row['name']} | {m} | " + " | ".join(
                    f"{row[k]:.3f}" if k in row else "—" for k in present) + " |"]
        md += ["", "</details>", ""]
    if skipped:
        md += ["## Not measured", ""] + [f"- **{k}**: {v}" for k, v in skipped.items()] + [""]
    json_path, md_path = out / "report.json", out / "report.md"
    atomic_write(json_path, (json.dumps(data, indent=1) + "\n").encode("utf-8"))
    atomic_write(md_path, "\n".join(md).encode("utf-8"))
    return md_path, json_path


def run_eval(sets: dict[str, Path], out: Path, *, models: Sequence[str] = (), fidelity: float = 0.5,
             device: str = "auto", backend: str = "auto", limit: int | None = None,
             identity_nets: Sequence[str] = IDENTITY_NETS, extra_methods: dict[str, Method] | None = None,
             progress: Callable[[str], None] | None = None, generative_only: bool = False) -> tuple[Path, Path]:
    """Evaluate the baselines, ``models`` and ``extra_methods`` on each set; write the report.

    ``generative_only``: also each model without the fidelity path (what restoration was before it).
    """
    methods: dict[str, Method] = {"input": input_method, "bicubic+unsharp": bicubic_unsharp}
    for model in models:
        for path in ((None, "auto") if generative_only else ("auto",)):
            label, method = model_method(model, fidelity=fidelity, device=device, backend=backend, fidelity_path=path)
            methods[label] = method
    methods.update(extra_methods or {})
    scorer = Scorer(identity_nets, device="cpu")
    opened = {p: PairedSet.open(root, limit) for p, root in sets.items()}
    by_preset = {}
    for preset, pset in opened.items():
        t0 = time.perf_counter()
        by_preset[preset] = evaluate_set(pset, methods, scorer,
                                         progress=(lambda s, p=preset: progress(f"{p}: {s}")) if progress else None)
        log.info("%s evaluated in %.0f s", preset, time.perf_counter() - t0)
    meta = {"methods": ", ".join(methods), "identity networks": ", ".join(scorer.embedders),
            "fidelity w": fidelity, "date": time.strftime("%Y-%m-%d %H:%M")}
    return write_report(out, by_preset, opened, scorer.skipped, meta)


def add_arguments(parser) -> None:
    """The ``likeness eval`` options (shared by the engine CLI's hook and ``python -m training.evaluate``)."""
    parser.add_argument("--faces", help="aligned-face cache (training.face_import) to build sets from")
    parser.add_argument("--sets-dir", help="where built sets go (default: OUT/sets)")
    parser.add_argument("--test-list", help="held-out identity list (default: ../shared/data/faces/test_identities.txt)")
    parser.add_argument("--set", action="append", default=[], metavar="DIR", help="an existing paired set (repeatable)")
    parser.add_argument("--presets", default=",".join(DEFAULT_PRESETS), help="presets to build (comma-separated)")
    parser.add_argument("--per-identity", type=int, default=2, help="faces per held-out identity (default 2)")
    parser.add_argument("--limit", type=int, help="evaluate at most this many faces per set")
    parser.add_argument("--model", action="append", default=[], help="model name or file to evaluate (repeatable)")
    parser.add_argument("-w", "--fidelity", type=float, default=0.5)
    parser.add_argument("--generative-only", action="store_true",
                        help="also evaluate each model without the fidelity path (its generative network alone)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--backend", default="auto", choices=["auto", "torch", "onnx"])
    parser.add_argument("--identity", default=",".join(IDENTITY_NETS), help="identity networks for IDS")
    parser.add_argument("-o", "--out", required=True, help="report folder")


def run_from_args(args) -> int:
    from tqdm import tqdm  # noqa: F401  (progress printing below stays plain for logs)

    out = Path(args.out)
    sets: dict[str, Path] = {}
    if args.faces:
        test_list = args.test_list or DEFAULT_TEST_LIST
        if not Path(test_list).is_file():
            raise LikenessError(f"{test_list}: held-out identity list not found; pass --test-list")
        sets = build_sets(args.faces, Path(args.sets_dir or out / "sets"), test_list=test_list,
                          presets=[p for p in args.presets.split(",") if p], per_identity=args.per_identity)
    for s in args.set:
        sets[Path(s).name] = Path(s)
    if not sets:
        raise LikenessError("nothing to evaluate: give --faces CACHE or --set DIR")
    md, js = run_eval(sets, out, models=args.model, fidelity=args.fidelity, device=args.device,
                      backend=args.backend, limit=args.limit,
                      identity_nets=[n for n in args.identity.split(",") if n],
                      progress=lambda s: print(s, flush=True), generative_only=args.generative_only)
    print(f"report: {md}\n        {js}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="likeness eval", description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        return run_from_args(args)
    except LikenessError as exc:
        print(f"likeness eval: {exc}")
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
