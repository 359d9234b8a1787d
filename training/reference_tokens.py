"""The reference adapter trained on cached transformer inputs: part 3 of issue 15 on a CPU budget.

    python -m training.reference_tokens cache --faces CACHE -o DIR --checkpoint CKPT [--per-face 4]
    python -m training.reference_tokens train DIR [--minutes 15] [--export MODEL.safetensors]

``training.reference_stage`` trains the adapter (``engine.nets.codeformer.reference``) end to
end: every step runs the frozen encoder on the LQ face and on the reference, and the decoder
for the pixel and identity losses. On these 2 CPU cores that is about 9 faces a second, and
7 GPU minutes (95 k faces) of it taught the adapter nothing the held-out faces showed.

The adapter's own objective, the lookup transformer's code cross-entropy, needs none of that at
every step: with the backbone frozen, the encoder latent of a degraded face, the codes of its
clean face (E_H) and each reference's latent and identity vector are fixed numbers. ``cache``
computes them once (degradations as the evaluation makes them: the 512 template face,
``training.degrade`` presets, then the network's input size); ``train`` also computes once the
tokens entering the first trained cross-attention layer, then runs only the layers after it:
32 faces a second here for likeness-lite (docs/references.md has what 16 minutes of it gave).

* References: another photo of the same training identity, mirrored at random; the LQ condition
  and each context part dropped with p = 0.1, as eq. 6 needs (``reference_stage.DROP_P``).
* Validation: identities set apart from training, code accuracy and cross-entropy with the
  reference, without it (the plain network) and with the training-free code prior
  (``engine.references.guide.ReferencePrior.codes``) for comparison, per degradation level.
* ``--export``: the backbone with the trained adapter as one model file, for
  ``training.reference_sweep --model FILE``.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from engine.nets.codeformer import CodeFormer
from engine.nets.codeformer.checkpoint import load_codeformer, save_codeformer
from engine.nets.codeformer.reference import ReferenceAdapter

from .face_import import DEFAULT_FACE_CACHE, DEFAULT_TEST_LIST, read_index, split_identities
from .reference_stage import DROP_P

log = logging.getLogger(__name__)

#: Degradation levels of the cached samples and their shares: mostly the damage references are
#: for, some milder faces so the adapter learns to leave a face that shows its person alone.
LEVEL_MIX: tuple[tuple[str, float], ...] = (
    ("mild", 0.10),
    ("sweep1", 0.15),
    ("sweep2", 0.20),
    ("sweep3", 0.20),
    ("sweep4", 0.20),
    ("sweep5", 0.15),
)
CACHE_FILE = "tokens.pt"
VAL_IDENTITIES = 15


def _load_hq_encoder(net: CodeFormer, checkpoint: str | Path) -> torch.nn.Module:
    """E_H, the frozen HQ encoder of the backbone's training run (it gives the clean faces' codes)."""
    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=False)
    if ckpt.get("hq_encoder") is None:
        raise ValueError(f"{checkpoint}: the training checkpoint has no HQ encoder (E_H)")
    encoder = copy.deepcopy(net.encoder)
    encoder.load_state_dict(ckpt["hq_encoder"])
    return encoder.eval().requires_grad_(False)


@torch.no_grad()
def build_cache(
    faces: str | Path,
    out: str | Path,
    *,
    model: str | Path,
    checkpoint: str | Path,
    per_face: int = 4,
    seed: int = 0,
    test_list: str | Path = DEFAULT_TEST_LIST,
    limit: int | None = None,
    shard: tuple[int, int] = (0, 1),
) -> Path:
    """Writes ``out/tokens.pt`` for the training identities of the face cache (never the held-out).

    ``shard`` (k, n): only every n-th face from the k-th, written to ``out/tokens.k.pt``, so n
    processes can share the work; ``load_cache`` joins the shards.
    """
    from engine.identity import make_embedder
    from engine.imageio import read_image
    from engine.runtime.face_restorer import faces_to_array

    from .degrade import degrade
    from .profile_eval import _at_512

    records, _ = split_identities(read_index(faces), Path(test_list))
    by_id: dict[str, int] = {}
    for r in records:
        by_id[r.identity] = by_id.get(r.identity, 0) + 1
    records = [r for r in records if by_id[r.identity] >= 2][:limit][shard[0] :: shard[1]]
    net = load_codeformer(model).eval()
    size = net.config.img_size
    hq_encoder = _load_hq_encoder(net, checkpoint)
    embedder = make_embedder("dlib")
    levels = [name for name, _ in LEVEL_MIX]
    shares = np.array([p for _, p in LEVEL_MIX])
    gt, ref_lat, ref_emb, lq_lat, lq_face, lq_level = [], [], [], [], [], []
    t0 = time.perf_counter()
    for i, rec in enumerate(records):
        hq = _at_512(read_image(Path(faces) / rec.path_suffix).rgb)
        pair = np.stack([hq, np.ascontiguousarray(hq[:, ::-1])])
        x = torch.from_numpy(faces_to_array(list(pair), size))
        gt.append(net.quantize.nearest_codes(hq_encoder(x[:1]))[0].to(torch.int16))
        ref_lat.append(net.encode_features(x)[0].half())
        ref_emb.append(torch.from_numpy(embedder.embed_images(list(pair))))
        rng = np.random.default_rng((seed, i))
        lqs, picked = [], []
        for _ in range(per_face):
            level = int(rng.choice(len(levels), p=shares))
            lqs.append(degrade(hq, levels[level], rng)[0])
            picked.append(level)
        lq_lat.append(net.encode_features(torch.from_numpy(faces_to_array(lqs, size)))[0].half())
        lq_face += [i] * per_face
        lq_level += picked
        if (i + 1) % 100 == 0:
            log.info("cache: %d/%d faces, %.0f s", i + 1, len(records), time.perf_counter() - t0)
    data = {
        "identities": [r.identity for r in records],
        "names": [r.name for r in records],
        "levels": levels,
        "gt_codes": torch.stack(gt),
        "ref_latent": torch.stack(ref_lat),  # (faces, 2 [as is, mirrored], d, latent side, latent side)
        "ref_embedding": torch.stack(ref_emb),  # (faces, 2, 128)
        "lq_latent": torch.cat(lq_lat),
        "lq_face": torch.tensor(lq_face),
        "lq_level": torch.tensor(lq_level),
        "model": str(model),
        "seed": seed,
    }
    path = Path(out) / (CACHE_FILE if shard[1] == 1 else f"tokens.{shard[0]}.pt")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(data, tmp)
    tmp.replace(path)
    return path


def load_cache(folder: str | Path) -> dict[str, Any]:
    """``folder/tokens.pt``, or its shards ``tokens.K.pt`` joined (face indices renumbered)."""
    folder = Path(folder)
    if (folder / CACHE_FILE).is_file():
        return torch.load(folder / CACHE_FILE, weights_only=False)
    parts = [torch.load(p, weights_only=False) for p in sorted(folder.glob("tokens.*.pt"))]
    if not parts:
        raise FileNotFoundError(f"{folder}: no {CACHE_FILE} and no shards")
    joined = dict(parts[0])
    offset, faces = 0, []
    for part in parts:
        faces.append(part["lq_face"] + offset)
        offset += len(part["identities"])
    for key in ("identities", "names"):
        joined[key] = [x for part in parts for x in part[key]]
    for key in ("gt_codes", "ref_latent", "ref_embedding", "lq_latent", "lq_level"):
        joined[key] = torch.cat([part[key] for part in parts])
    joined["lq_face"] = torch.cat(faces)
    return joined


class TokenBatches:
    """Training and validation samples of a token cache, with a reference drawn per sample."""

    def __init__(self, data: dict[str, Any], val_identities: int = VAL_IDENTITIES, seed: int = 0) -> None:
        self.data = data
        names = sorted(set(data["identities"]))
        rng = np.random.default_rng(seed)
        val = set(rng.choice(names, size=min(val_identities, len(names) // 5), replace=False).tolist())
        face_val = torch.tensor([ident in val for ident in data["identities"]])
        self.val = torch.nonzero(face_val[data["lq_face"]]).flatten()
        self.train = torch.nonzero(~face_val[data["lq_face"]]).flatten()
        self.same: dict[int, list[int]] = {}
        by_id: dict[str, list[int]] = {}
        for f, ident in enumerate(data["identities"]):
            by_id.setdefault(ident, []).append(f)
        for members in by_id.values():
            for f in members:
                self.same[f] = [g for g in members if g != f] or [f]

    def references(self, faces: torch.Tensor, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Per sample another face of the same person and a mirror flag."""
        refs = torch.tensor([int(rng.choice(self.same[int(f)])) for f in faces])
        flips = torch.from_numpy(rng.integers(0, 2, len(faces)))
        return refs, flips

    def inputs(
        self, idx: torch.Tensor, rng: np.random.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(LQ latents, HQ codes, reference embeddings, reference latents) of samples ``idx``."""
        d = self.data
        faces = d["lq_face"][idx]
        refs, flips = self.references(faces, rng)
        return (
            d["lq_latent"][idx].float(),
            d["gt_codes"][faces].long(),
            d["ref_embedding"][refs, flips].float(),
            d["ref_latent"][refs, flips].float(),
        )


@torch.no_grad()
def frozen_prefix(net: CodeFormer, tokens: torch.Tensor, layers: int, chunk: int = 256) -> torch.Tensor:
    """The tokens after the first ``layers`` self-attention layers (their cross-attention stays zero)."""
    pos = net.position_emb.unsqueeze(1)
    out = []
    for start in range(0, tokens.shape[1], chunk):
        x = tokens[:, start : start + chunk]
        for layer in net.ft_layers[:layers]:
            x = layer(x, pos.expand(-1, x.shape[1], -1))
        out.append(x.half())
    return torch.cat(out, dim=1)


def tail_logits(
    net: CodeFormer, adapter: ReferenceAdapter, tokens: torch.Tensor, context: torch.Tensor | None, start: int
) -> torch.Tensor:
    """``adapter.logits`` from transformer layer ``start`` on, given the tokens entering it."""
    pos = net.position_emb.unsqueeze(1).expand(-1, tokens.shape[1], -1)
    for layer, cross in zip(net.ft_layers[start:], adapter.cross_layers[start:], strict=True):
        tokens = layer(tokens, pos)
        if context is not None:
            tokens = cross(tokens, context)
    return net.idx_pred_layer(tokens).permute(1, 0, 2)


@torch.no_grad()
def validate(net: CodeFormer, adapter: ReferenceAdapter, batches: TokenBatches, seed: int = 1) -> dict[str, Any]:
    """Code accuracy / cross-entropy on the validation identities, per level: plain, prior, adapter."""
    from engine.references.guide import ReferencePrior

    rng = np.random.default_rng(seed)
    beta = ReferencePrior().codes
    d = batches.data
    sums: dict[str, dict[str, float]] = {}
    for start in range(0, len(batches.val), 256):
        idx = batches.val[start : start + 256]
        lat, gt, emb, rlat = batches.inputs(idx, rng)
        tokens = net.token_embeddings(lat)
        plain = net.transform(tokens)
        prior = plain + beta * F.log_softmax(net.predict_logits(rlat), dim=-1)
        guided = adapter.logits(net, tokens, adapter.context(emb, rlat))
        for name, logits in (("plain", plain), ("prior", prior), ("adapter", guided)):
            ce = F.cross_entropy(logits.flatten(0, 1), gt.flatten(), reduction="none").view(gt.shape).mean(1)
            acc = (logits.argmax(-1) == gt).float().mean(1)
            for level_i, c, a in zip(d["lq_level"][idx].tolist(), ce.tolist(), acc.tolist(), strict=True):
                key = d["levels"][level_i]
                s = sums.setdefault(key, {})
                s[f"{name}_ce"] = s.get(f"{name}_ce", 0.0) + c
                s[f"{name}_acc"] = s.get(f"{name}_acc", 0.0) + a
                if name == "plain":
                    s["n"] = s.get("n", 0.0) + 1
    return {
        level: {k: round(v / s["n"], 4) for k, v in s.items() if k != "n"} | {"n": int(s["n"])}
        for level, s in sorted(sums.items(), key=lambda kv: d["levels"].index(kv[0]))
    }


def train_tokens(
    folder: str | Path,
    *,
    minutes: float = 15.0,
    steps: int | None = None,
    batch: int = 64,
    lr: float = 5e-4,
    frozen_layers: int = 2,
    seed: int = 0,
    val_every: int = 500,
    export: str | Path | None = None,
) -> dict[str, Any]:
    """Trains a fresh adapter on ``folder/tokens.pt``; writes ``folder/adapter.pt`` and ``train.json``.

    ``frozen_layers``: the cross-attention after the first K transformer layers stays zero, so
    the tokens entering layer K are computed once for every sample and only the last layers run
    (and back-propagate) per step.
    """
    folder = Path(folder)
    data = load_cache(folder)
    net = load_codeformer(data["model"]).eval().requires_grad_(False)
    adapter = ReferenceAdapter.for_network(net)
    net.attach_reference(adapter)
    adapter.cross_layers[:frozen_layers].requires_grad_(False)
    batches = TokenBatches(data, seed=seed)
    prefix = frozen_prefix(net, net.token_embeddings(data["lq_latent"].float()), frozen_layers).transpose(0, 1)
    trainable = [p for p in adapter.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=lr, weight_decay=1e-4)
    rng = np.random.default_rng(seed)
    g = torch.Generator().manual_seed(seed)
    history: list[dict[str, Any]] = [{"step": 0, "val": validate(net, adapter, batches)}]
    log.info("step 0: %s", json.dumps(history[-1]["val"]))
    t0, step = time.perf_counter(), 0
    budget_s = 60 * minutes
    total = steps or 10**9
    pos = net.position_emb.unsqueeze(1)
    while step < total and time.perf_counter() - t0 < budget_s:
        frac = step / total if steps else (time.perf_counter() - t0) / budget_s
        for group in opt.param_groups:
            group["lr"] = lr * min(1.0, (step + 1) / 50) * 0.5 * (1 + np.cos(np.pi * min(frac, 1.0)))
        idx = batches.train[torch.randint(len(batches.train), (batch,), generator=g)]
        _, gt, emb, rlat = batches.inputs(idx, rng)
        keep_lq, keep_id, keep_ref = torch.rand(3, batch, generator=g) >= DROP_P
        adapter.train()
        # The null tokens (the dropped LQ condition) are a parameter: they pass the frozen layers here.
        null = adapter.null_tokens.unsqueeze(1)
        for layer in net.ft_layers[:frozen_layers]:
            null = layer(null, pos)
        tokens = torch.where(keep_lq.view(1, -1, 1), prefix[idx].transpose(0, 1).float(), null)
        context = adapter.context(emb, rlat, keep_id=keep_id, keep_ref=keep_ref)
        logits = tail_logits(net, adapter, tokens, context, frozen_layers)
        loss = F.cross_entropy(logits.flatten(0, 1), gt.flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        opt.step()
        step += 1
        if step % val_every == 0:
            adapter.eval()
            history.append({"step": step, "loss": round(loss.item(), 4), "val": validate(net, adapter, batches)})
            log.info("step %d (%.0f s): %s", step, time.perf_counter() - t0, json.dumps(history[-1]))
    adapter.eval()
    result = {
        "steps": step,
        "minutes": round((time.perf_counter() - t0) / 60, 2),
        "frozen_layers": frozen_layers,
        "samples": int(len(batches.train)),
        "val_samples": int(len(batches.val)),
        "final": validate(net, adapter, batches),
        "history": history,
    }
    torch.save(adapter.state_dict(), folder / "adapter.pt")
    (folder / "train.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    if export:
        meta = {"training_stage": "reference-tokens", "training_steps": str(step)}
        save_codeformer(net, Path(export), metadata=meta)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("cache", help="degrade and encode the training faces once")
    c.add_argument("--faces", default=str(DEFAULT_FACE_CACHE))
    c.add_argument("-o", "--out", required=True)
    c.add_argument("--model", default="resources/models/likeness-lite.safetensors")
    c.add_argument("--checkpoint", required=True, help="the backbone's training checkpoint (for E_H)")
    c.add_argument("--per-face", type=int, default=4)
    c.add_argument("--limit", type=int)
    c.add_argument("--shard", default="0/1", help="K/N: every N-th face from the K-th")
    c.add_argument("--test-list", default=str(DEFAULT_TEST_LIST))
    t = sub.add_parser("train", help="train the adapter on a token cache")
    t.add_argument("folder")
    t.add_argument("--minutes", type=float, default=15.0)
    t.add_argument("--steps", type=int)
    t.add_argument("--batch", type=int, default=64)
    t.add_argument("--lr", type=float, default=5e-4)
    t.add_argument("--val-every", type=int, default=500)
    t.add_argument("--frozen-layers", type=int, default=2)
    t.add_argument("--export")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.command == "cache":
        path = build_cache(
            args.faces,
            args.out,
            model=args.model,
            checkpoint=args.checkpoint,
            per_face=args.per_face,
            test_list=args.test_list,
            limit=args.limit,
            shard=tuple(int(v) for v in args.shard.split("/")),  # type: ignore[arg-type]
        )
        print(path)
    else:
        res = train_tokens(
            args.folder,
            minutes=args.minutes,
            steps=args.steps,
            batch=args.batch,
            lr=args.lr,
            val_every=args.val_every,
            frozen_layers=args.frozen_layers,
            export=args.export,
        )
        print(json.dumps(res["final"], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
