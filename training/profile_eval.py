"""What a personal adapter gains: identity on a person's other photos, restored from severe damage.

    python -m training.profile_eval -o OUT [--identities N] [--steps S | --minutes M] [--model M]

For each held-out identity of the face cache (``test_identities.txt``; never seen in training):

1. a profile from all of the person's photos but three (aligned faces of the cache, enlarged to
   the 512 template), and its adapter trained with ``training.personalise`` (default budget
   unless ``--steps``/``--minutes`` say otherwise);
2. the three other photos degraded ``severe`` (seeded per photo), restored
   (a) by the unpersonalised model and (b) by the adapter-folded model, both with the profile's
   chosen faces as references through the engine's reference path
   (``engine.references.guide.restore_with_references``: reference prior and identity guidance,
   the fidelity path mixed in at w), as ``training.reference_eval`` does; and (p) as the engine
   restores a profiled face (``engine.profiles.use``): faces the reference gate guides by (a),
   the others by the adapter alone. The same three photos degraded ``moderate`` get (a) and (p);
3. (c) three photos of *another* held-out person through (b)'s network with no references,
   against the plain model: how far the adapter alone moves faces that are not its person's.

IDS (cosine to the undamaged photo at 256²) by the independent evaluator, by mobileface,
faceres-pool and dlib separately; per identity (mean of its three photos) and mean ± spread over
identities. Writes ``OUT/report.json`` and ``OUT/report.md``; a finished identity is kept, so a
killed run continues.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from engine.faces.align import FFHQ_SIZE
from engine.imageio import read_image
from engine.profiles.store import Profile, ProfileFace, ProfileStore

from .eval_scoring import to_eval_size
from .face_import import DEFAULT_FACE_CACHE, DEFAULT_TEST_LIST

log = logging.getLogger(__name__)

JUDGES = ("evaluator", "mobileface", "faceres-pool", "dlib")
DEFAULT_CACHE = DEFAULT_FACE_CACHE
TEST_PHOTOS = 3


def identity_photos(cache: Path, identity: str) -> list[Path]:
    folder = cache / "faces" / identity
    return sorted(folder.glob("*.png"))


def _png(rgb: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError("PNG encoding failed")
    return buf.tobytes()


def _at_512(rgb: np.ndarray) -> np.ndarray:
    if rgb.shape[0] == FFHQ_SIZE:
        return rgb
    return np.asarray(cv2.resize(rgb, (FFHQ_SIZE, FFHQ_SIZE), interpolation=cv2.INTER_CUBIC))


def build_profile(store: ProfileStore, name: str, photos: Sequence[Path]) -> Profile:
    """A profile straight from aligned faces (as ``likeness profile create`` would make it)."""
    from engine.identity import make_embedder
    from engine.references.analyse import face_sharpness

    faces = [_at_512(read_image(p).rgb) for p in photos]
    embeddings = make_embedder("dlib").embed_images(faces)
    records = [
        (ProfileFace(file="", source=str(p), face=0, sharpness=face_sharpness(f), size=256.0, yaw=0.0), _png(f))
        for p, f in zip(photos, faces, strict=True)
    ]
    return store.create(name, records, embeddings)


def _severe(photo: Path, seed: int, preset: str = "severe") -> tuple[np.ndarray, np.ndarray]:
    """(HQ at 512, its ``preset`` degradation), seeded by (seed, photo name) like the evaluation sets."""
    from .degrade import degrade

    hq = _at_512(read_image(photo).rgb)
    tag = int.from_bytes(f"{photo.parent.name}/{photo.stem}".encode()[-8:].rjust(8, b"\0"), "little")
    lq, _ = degrade(hq, preset, np.random.default_rng((seed, tag)))
    return hq, lq


class Judges:
    """The four identity networks, embedding at the evaluation size."""

    def __init__(self) -> None:
        import training  # noqa: F401  (registers the judges with make_embedder)
        from engine.identity import make_embedder

        self.nets = {name: make_embedder(name) for name in JUDGES}

    def embed(self, faces: list[np.ndarray]) -> dict[str, np.ndarray]:
        small = [to_eval_size(f) for f in faces]
        return {name: net.embed_images(small) for name, net in self.nets.items()}

    def ids(self, outs: list[np.ndarray], truth: dict[str, np.ndarray]) -> dict[str, float]:
        got = self.embed(outs)
        return {name: float(np.mean(np.sum(got[name] * truth[name], axis=1))) for name in JUDGES}


def evaluate_identity(
    identity: str,
    other: str,
    cache: Path,
    work: Path,
    judges: Judges,
    restorer: Any,
    *,
    model: str,
    steps: int | None,
    minutes: float | None,
    fidelity: float,
    seed: int,
    config: Any = None,
) -> dict[str, Any]:
    from engine.api import finish_face
    from engine.identity import make_embedder
    from engine.nets.lora import load_adapter, merged
    from engine.references.check import steered_by_references
    from engine.references.guide import IdentityGuidance, ReferencePrior, restore_with_references
    from engine.runtime.face_restorer import FaceRestorer

    from .personalise import train_adapter

    photos = identity_photos(cache, identity)
    profile_photos, test_photos = photos[:-TEST_PHOTOS], photos[-TEST_PHOTOS:]
    store = ProfileStore(work / "profiles")
    if store.exists(identity):
        store.delete(identity)
    profile = build_profile(store, identity, profile_photos)
    t0 = time.perf_counter()
    record = train_adapter(
        profile, model=model, steps=steps, minutes=minutes, device="auto", store=store, config=config
    )
    train_s = time.perf_counter() - t0
    profile = store.get(identity)
    adapter_path = profile.adapter_path
    assert adapter_path is not None

    base = restorer.torch_restorer
    personal = FaceRestorer(merged(base.net, load_adapter(adapter_path)), base.device, f"{model}+{identity}")
    embedder = make_embedder(device=base.device)
    chosen = profile.chosen[:5]
    refs = [read_image(profile.face_path(f)).rgb for f in chosen]
    ref_emb = np.stack([make_embedder("dlib").embed_images([r])[0] for r in refs])
    plan, prior = IdentityGuidance(), ReferencePrior()

    pairs = [_severe(p, seed) for p in test_photos]
    hq = [h for h, _ in pairs]
    lq = [q for _, q in pairs]
    truth = judges.embed(hq)

    def with_refs(net_restorer: FaceRestorer, faces: list[np.ndarray] = lq) -> list[np.ndarray]:
        outs = []
        for face in faces:
            restored, _ = restore_with_references(net_restorer, [face], fidelity, refs, embedder, plan, ref_emb, prior)
            restored = restorer.mix_with_fidelity_path([face], restored, fidelity)
            outs.append(finish_face(restored[0], face))
        return outs

    def plain(net_restorer: FaceRestorer, faces: list[np.ndarray]) -> list[np.ndarray]:
        gen = net_restorer.restore(faces, fidelity)
        return [
            finish_face(g, f) for g, f in zip(restorer.mix_with_fidelity_path(faces, gen, fidelity), faces, strict=True)
        ]

    def product(faces: list[np.ndarray]) -> list[np.ndarray]:
        """As the engine restores a profiled face: guided ones on the plain network, the rest by the adapter."""
        return [
            with_refs(base, [f])[0] if steered_by_references(f, embedder) else plain(personal, [f])[0] for f in faces
        ]

    moderate = [_severe(p, seed, "moderate") for p in test_photos]
    moderate_lq = [q for _, q in moderate]
    moderate_truth = judges.embed([h for h, _ in moderate])

    row: dict[str, Any] = {
        "identity": identity,
        "profile_photos": len(profile_photos),
        "train_photos": record.photos,
        "steps": record.steps,
        "train_min": round(train_s / 60, 2),
        "validation": record.validation,
        "input": judges.ids(lq, truth),
        "base_refs": judges.ids(with_refs(base), truth),
        "adapter_refs": judges.ids(with_refs(personal), truth),
        "base_plain": judges.ids(plain(base, lq), truth),
        "adapter_plain": judges.ids(plain(personal, lq), truth),
        "product": judges.ids(product(lq), truth),
        "guided": int(sum(steered_by_references(f, embedder) for f in lq)),
        "moderate_input": judges.ids(moderate_lq, moderate_truth),
        "moderate_base_refs": judges.ids(with_refs(base, moderate_lq), moderate_truth),
        "moderate_product": judges.ids(product(moderate_lq), moderate_truth),
        "moderate_guided": int(sum(steered_by_references(f, embedder) for f in moderate_lq)),
    }
    # (c) another person's faces through this adapter, no references: how far it moves them.
    other_pairs = [_severe(p, seed) for p in identity_photos(cache, other)[-TEST_PHOTOS:]]
    other_truth = judges.embed([h for h, _ in other_pairs])
    other_lq = [q for _, q in other_pairs]
    a, b = plain(base, other_lq), plain(personal, other_lq)
    row["other"] = other
    row["other_base"] = judges.ids(a, other_truth)
    row["other_adapter"] = judges.ids(b, other_truth)
    ea, eb = judges.embed(a), judges.embed(b)
    row["other_shift"] = {n: float(np.mean(np.sum(ea[n] * eb[n], axis=1))) for n in JUDGES}  # cos(base, adapter)
    store.delete(identity)
    return row


def summarise(rows: list[dict[str, Any]]) -> str:
    lines = [
        "# Personal adapters: identity on held-out photos, severe damage",
        "",
        f"{len(rows)} identities; per identity the mean over its {TEST_PHOTOS} test photos. "
        "IDS = cosine to the undamaged photo (256²). refs = the profile's faces as references "
        "through the engine's reference path; plain = no references.",
        "",
    ]
    for judge in JUDGES:
        lines += [
            f"## IDS ({judge})",
            "",
            "| identity | photos | steps | min | input | base+refs | adapter+refs | gain | base | adapter "
            "| engine's path | moderate: input, base+refs, engine's path |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in rows:
            gain = r["adapter_refs"][judge] - r["base_refs"][judge]
            lines.append(
                f"| {r['identity']} | {r['train_photos']} | {r['steps']} | {r['train_min']:.1f} | "
                f"{r['input'][judge]:.3f} | "
                f"{r['base_refs'][judge]:.3f} | {r['adapter_refs'][judge]:.3f} | {gain:+.3f} | "
                f"{r['base_plain'][judge]:.3f} | {r['adapter_plain'][judge]:.3f} | "
                f"{r['product'][judge]:.3f} ({r['guided']} guided) | {r['moderate_input'][judge]:.3f}, "
                f"{r['moderate_base_refs'][judge]:.3f}, {r['moderate_product'][judge]:.3f} |"
            )

        def ms(key: str, j: str = judge) -> str:
            v = np.array([r[key][j] for r in rows])
            return f"{v.mean():.3f} ± {v.std():.3f}"

        def gain(key: str, base: str, j: str = judge) -> str:
            d = np.array([r[key][j] - r[base][j] for r in rows])
            return f"{d.mean():+.3f} ± {d.std():.3f} ({int((d > 0).sum())}/{len(rows)} up)"

        lines.append(
            f"| **mean ± sd** | | | | {ms('input')} | {ms('base_refs')} | {ms('adapter_refs')} | "
            f"**{gain('adapter_refs', 'base_refs')}** | {ms('base_plain')} | {ms('adapter_plain')} | "
            f"{gain('product', 'base_refs')} | {ms('moderate_input')}, {ms('moderate_base_refs')}, "
            f"{gain('moderate_product', 'moderate_base_refs')} |"
        )
        lines.append("")
    lines += [
        "## Other people's faces through an adapter (no references)",
        "",
        "| judge | base IDS | adapter IDS | Δ | cos(base out, adapter out) |",
        "|---|---|---|---|---|",
    ]
    for judge in JUDGES:
        b = np.array([r["other_base"][judge] for r in rows])
        a = np.array([r["other_adapter"][judge] for r in rows])
        s = np.array([r["other_shift"][judge] for r in rows])
        lines.append(
            f"| {judge} | {b.mean():.3f} | {a.mean():.3f} | "
            f"{(a - b).mean():+.3f} ± {(a - b).std():.3f} | {s.mean():.3f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("-o", "--out", required=True)
    parser.add_argument("--cache", default=str(DEFAULT_CACHE))
    parser.add_argument("--test-list", default=str(DEFAULT_TEST_LIST))
    parser.add_argument("--identities", type=int, default=10)
    parser.add_argument("--min-photos", type=int, default=9, help="skip identities with fewer photos")
    parser.add_argument("--model", default="likeness-lite")
    parser.add_argument("--steps", type=int)
    parser.add_argument("--minutes", type=float)
    parser.add_argument("-w", "--fidelity", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip", type=int, default=0, help="leave out the first N usable identities")
    parser.add_argument("--prior-in-training", action="store_true", help="PersonalConfig(reference_prior=True)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    from .evaluate import make_restorer
    from .personalise import PersonalConfig

    cache, out = Path(args.cache), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    test = [ln.strip() for ln in Path(args.test_list).read_text().splitlines() if ln.strip()]
    usable = [i for i in test if len(identity_photos(cache, i)) >= args.min_photos]
    usable = usable[args.skip : args.skip + args.identities]
    done_file = out / "rows.jsonl"
    rows = [json.loads(ln) for ln in done_file.read_text().splitlines()] if done_file.is_file() else []
    done = {r["identity"] for r in rows}
    restorer = make_restorer(args.model, backend="torch")
    judges = Judges()
    work = out / "work"
    for k, identity in enumerate(usable):
        if identity in done:
            continue
        other = usable[(k + 1) % len(usable)]
        row = evaluate_identity(
            identity,
            other,
            cache,
            work,
            judges,
            restorer,
            model=restorer.model_name,
            steps=args.steps,
            minutes=args.minutes,
            fidelity=args.fidelity,
            seed=args.seed,
            config=PersonalConfig(reference_prior=True) if args.prior_in_training else None,
        )
        rows.append(row)
        with open(done_file, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        g = row["adapter_refs"]["evaluator"] - row["base_refs"]["evaluator"]
        print(
            f"{identity}: {row['train_photos']} photos, {row['steps']} steps, {row['train_min']:.1f} min, "
            f"evaluator {row['base_refs']['evaluator']:.3f} → {row['adapter_refs']['evaluator']:.3f} ({g:+.3f})",
            flush=True,
        )
        (out / "report.md").write_text(summarise(rows), encoding="utf-8")
    (out / "report.json").write_text(json.dumps(rows, indent=1), encoding="utf-8")
    (out / "report.md").write_text(summarise(rows), encoding="utf-8")
    shutil.rmtree(work, ignore_errors=True)
    print(f"report: {out / 'report.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
