"""A person's own adapter: LoRA on the restoration network, trained on that person's good photos.

    likeness profile train NAME [--minutes M] [--steps N] [--model M] [--device D] [--rank R] [--json-progress]

LAFR's recipe (methods.md §4) for one person: a rank-4 LoRA (``engine.nets.lora``) on the parts
that map a damaged face to codes and features (encoder, lookup transformer, CFT, reference layers
where present); the codebook and the decoder stay frozen, so the adapter can only choose and
modulate codes the network already has. Trained on synthetic degradations of the profile's own
faces at the network's size: 10 % ``mild``, 35 % ``moderate``, 55 % ``severe`` (the presets of
``training.degrade``, scaled to the size as training does).

Losses per step (a batch of 4):

* stage II: λ_token·CE(logits, codes) + λ_feat·‖Z_l − sg(Z_c)‖², with the codes the *base*
  network picks for the clean face (its lookup on the HQ photo, computed once before the adapter
  is attached: a model file holds no E_H);
* stage III: L1 + perceptual (MS-SSIM, the lite model's substitute for VGG) of the decoded face,
  straight-through from the predicted codes, at a fidelity w drawn in [0.25, 1] per step;
* identity: the hard-example identity loss (methods.md §3), centred dlib cosines,
  (1 − λ)·L_ID(HQ, out) + λ·L_ID(REF, out) with λ = 0.6, REF another of the person's training
  photos; a network with reference layers also sees that photo as its reference.

No adversarial term: a discriminator started from scratch needs far more steps than a personal
budget has (and the official release ships none).

**Early stopping** on the held-out faces (``ProfileFace.held_out``; when none are marked, every
fifth face, at least one, is marked and saved in the profile): each degraded once ``moderate``
and once ``severe`` (seeded), restored at w = 0.5; the score is (1 − centred dlib cosine to the
photo) + L1, lower is better. The adapter kept is the best one seen; training stops after
``patience`` validations without improvement, at the step budget, or at the wall-clock budget.

**Resume**: ``profile.training_dir/state.pt`` (atomic) holds the adapter, the optimiser, the
best adapter so far and the step; the batches are a pure function of (seed, step), so a second
run continues exactly. It is removed once ``adapter.safetensors`` is written.

``PersonalConfig.reference_prior`` also passes the severe samples through the engine's reference
prior (``engine.references.guide.ReferencePrior``) while training; on four held-out identities it
changed nothing measurable, so it is off.

**Budget**: ``default_steps(photos)`` (about 30 passes over the training photos, 200 to 600
steps); on the CPU also ``DEFAULT_MINUTES`` of wall time, which bounds a slow or busy machine.
likeness-lite on two CPU cores, batch 4: 0.42 s a step on an idle machine, so 50 photos (300
steps) train in about 2.2 minutes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from engine.errors import CancelledError, LikenessError
from engine.faces.align import FFHQ_SIZE
from engine.files import write_bytes
from engine.imageio import read_image
from engine.nets import lora
from engine.nets.codeformer import CodeFormer, load_codeformer
from engine.profiles.store import ADAPTER_FILE, AdapterRecord, Profile, ProfileStore
from engine.references.guide import ReferencePrior, apply_reference_prior

from .data import degradation_for_size
from .degrade import PRESETS, apply, sample_params
from .loop import atomic_save, load_checkpoint
from .losses.common import IdentityLoss, MSSSIMLoss
from .losses.stage2 import straight_through_quant

log = logging.getLogger(__name__)

STATE_FILE = "state.pt"
STATE_FORMAT = "likeness-personal/1"
PREVIEW_FILE = "adapter-preview.png"
#: Wall-clock budget on the CPU when neither --minutes nor --steps is given.
DEFAULT_MINUTES = 9.0
MIN_FACES = 3
MAX_VAL_FACES = 12

Progress = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class PersonalConfig:
    """Settings of one personal training (defaults are the product's)."""

    rank: int = lora.DEFAULT_RANK
    alpha: float = 4.0
    lr: float = 5e-4
    batch_size: int = 4
    token_weight: float = 0.5
    feat_weight: float = 1.0
    l1_weight: float = 1.0
    perceptual_weight: float = 1.0
    ids_weight: float = 0.5
    hard_lambda: float = 0.6
    presets: tuple[tuple[str, float], ...] = (("mild", 0.10), ("moderate", 0.35), ("severe", 0.55))
    w_range: tuple[float, float] = (0.25, 1.0)
    val_w: float = 0.5
    val_every: int = 25
    patience: int = 4
    checkpoint_every: int = 10
    reference_prior: bool = False  # train through the engine's reference prior (ReferencePrior)
    seed: int = 0


def default_steps(photos: int, batch_size: int = 4) -> int:
    """Steps of the default budget: about 30 passes over the training photos, 200 to 600 steps."""
    return int(min(600, max(200, round(30 * photos / batch_size))))


# ----------------------------------------------------------------------------- data


@dataclass
class PersonalData:
    """The person's faces at the network's size, split for training and early stopping."""

    train: list[np.ndarray]  # uint8 RGB (S, S, 3)
    val: list[np.ndarray]
    train_names: list[str]
    val_names: list[str]


def split_faces(profile: Profile, store: ProfileStore) -> Profile:
    """The profile with its held-out faces marked (every fifth, at least one, when none are)."""
    faces = profile.faces
    if len(faces) < MIN_FACES:
        raise LikenessError(
            f"profile {profile.name!r} has {len(faces)} face(s); an adapter needs at least {MIN_FACES} "
            "(add photos of the person to the profile)"
        )
    if any(f.held_out for f in faces):
        if all(f.held_out for f in faces):
            raise LikenessError(f"every face of profile {profile.name!r} is held out; none is left to train on")
        return profile
    n_val = max(1, round(len(faces) / 5))
    picks = {int(i) for i in np.linspace(0, len(faces) - 1, n_val + 2)[1:-1].round()}
    marked = tuple(dataclasses.replace(f, held_out=i in picks) for i, f in enumerate(faces))
    return store.save(dataclasses.replace(profile, faces=marked))


def load_faces(profile: Profile, size: int) -> PersonalData:
    def read(face) -> np.ndarray:
        rgb = read_image(profile.face_path(face)).rgb
        if rgb.shape[0] != size or rgb.shape[1] != size:
            interp = cv2.INTER_AREA if rgb.shape[0] > size else cv2.INTER_CUBIC
            rgb = cv2.resize(rgb, (size, size), interpolation=interp)
        return np.ascontiguousarray(rgb)

    train = [f for f in profile.faces if not f.held_out]
    val = [f for f in profile.faces if f.held_out]
    if len(val) > MAX_VAL_FACES:
        val = [val[int(i)] for i in np.linspace(0, len(val) - 1, MAX_VAL_FACES).round()]
    return PersonalData(
        [read(f) for f in train], [read(f) for f in val], [f.file for f in train], [f.file for f in val]
    )


def _to_tensor(images: Sequence[np.ndarray], device: torch.device) -> torch.Tensor:
    arr = np.stack(images).astype(np.float32).transpose(0, 3, 1, 2) / 127.5 - 1.0
    return torch.from_numpy(np.ascontiguousarray(arr)).to(device)


def _to_images(t: torch.Tensor) -> list[np.ndarray]:
    arr = ((t.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    return list(arr)


class Batches:
    """Batches as a pure function of (seed, step): which faces, flips, degradations, references."""

    def __init__(self, faces: list[np.ndarray], cfg: PersonalConfig, size: int) -> None:
        self.faces = faces
        self.cfg = cfg
        self.configs = {name: degradation_for_size(PRESETS[name], size) for name, _ in cfg.presets}
        probs = np.array([p for _, p in cfg.presets], np.float64)
        self.probs = probs / probs.sum()

    def indices(self, step: int) -> list[int]:
        n, b = len(self.faces), self.cfg.batch_size
        out = []
        for pos in range(step * b, (step + 1) * b):
            perm = np.random.default_rng((self.cfg.seed, 0xDA7A, pos // n)).permutation(n)
            out.append(int(perm[pos % n]))
        return out

    def batch(self, step: int) -> tuple[list[int], list[bool], list[np.ndarray], list[np.ndarray], float]:
        """(face indices, flips, LQ faces, reference faces, w) of ``step``."""
        idx, flips, lqs, refs = self.indices(step), [], [], []
        for slot, i in enumerate(idx):
            rng = np.random.default_rng((self.cfg.seed, step, slot))
            flip = bool(rng.uniform() < 0.5)
            hq = np.ascontiguousarray(self.faces[i][:, ::-1]) if flip else self.faces[i]
            preset = self.cfg.presets[int(rng.choice(len(self.probs), p=self.probs))][0]
            lqs.append(apply(hq, sample_params(self.configs[preset], rng)))
            others = [j for j in range(len(self.faces)) if j != i] or [i]
            ref = self.faces[int(rng.choice(others))]
            refs.append(np.ascontiguousarray(ref[:, ::-1]) if rng.uniform() < 0.5 else ref)
            flips.append(flip)
        w = float(np.random.default_rng((self.cfg.seed, step, 0x3)).uniform(*self.cfg.w_range))
        return idx, flips, lqs, refs, w


def validation_inputs(faces: list[np.ndarray], size: int, seed: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Each held-out face degraded once ``moderate`` and once ``severe``: (HQ, LQ) lists."""
    hqs, lqs = [], []
    for i, face in enumerate(faces):
        for k, preset in enumerate(("moderate", "severe")):
            rng = np.random.default_rng((seed, 0x7A1, i, k))
            hqs.append(face)
            lqs.append(apply(face, sample_params(degradation_for_size(PRESETS[preset], size), rng)))
    return hqs, lqs


# ----------------------------------------------------------------------------- training


@dataclass
class _Run:
    """The mutable state of one training (what ``state.pt`` holds besides tensors)."""

    step: int = 0
    total: int = 0
    best_val: float = math.inf
    best_step: int = 0
    bad_vals: int = 0
    wall_s: float = 0.0
    before: dict[str, float] = dataclasses.field(default_factory=dict)
    after: dict[str, float] = dataclasses.field(default_factory=dict)
    history: list[dict[str, float]] = dataclasses.field(default_factory=list)


class PersonalTrainer:
    """Trains one profile's adapter (see the module docstring)."""

    def __init__(
        self,
        profile: Profile,
        net: CodeFormer,
        model: str,
        model_sha256: str,
        device: torch.device,
        cfg: PersonalConfig,
        steps: int,
        deadline_s: float | None,
    ) -> None:
        self.profile, self.model, self.model_sha256 = profile, model, model_sha256
        self.device, self.cfg = device, cfg
        self.deadline_s = deadline_s
        self.size = net.config.img_size
        self.data = load_faces(profile, self.size)
        self.net = net.float().to(device).eval()
        center = _dlib_center()
        self.id_loss = IdentityLoss(center, device)
        self.perceptual = MSSSIMLoss().to(device) if cfg.perceptual_weight > 0 else None
        self.batches = Batches(self.data.train, cfg, self.size)
        self.prior = ReferencePrior()
        self.val_hq, self.val_lq = validation_inputs(self.data.val, self.size, cfg.seed)
        self._targets_of_base()  # the base network's codes of each clean face, before the adapter
        self.params = lora.add_lora(self.net, cfg.rank, cfg.alpha)
        self.opt = torch.optim.Adam(self.params, lr=cfg.lr)
        self.run_state = _Run(total=steps)
        self.best = lora.adapter_state(self.net)
        self.state_path = profile.training_dir / STATE_FILE

    @torch.no_grad()
    def _targets_of_base(self) -> None:
        """Codes and code features the base network gives each training face (and its mirror image)."""
        codes: dict[tuple[int, bool], torch.Tensor] = {}
        for flip in (False, True):
            faces = [np.ascontiguousarray(f[:, ::-1]) if flip else f for f in self.data.train]
            for start in range(0, len(faces), 8):
                x = _to_tensor(faces[start : start + 8], self.device)
                c, _ = self.net.encode(x)
                for k in range(len(c)):
                    codes[(start + k, flip)] = c[k]
        self.codes = codes

    # -- state -------------------------------------------------------------------------------
    def _signature(self) -> dict[str, Any]:
        return {
            "model_sha256": self.model_sha256,
            "rank": self.cfg.rank,
            "alpha": self.cfg.alpha,
            "train": self.data.train_names,
            "val": self.data.val_names,
            "config": dataclasses.asdict(self.cfg),
        }

    def save_state(self) -> None:
        atomic_save(
            {
                "format": STATE_FORMAT,
                "signature": self._signature(),
                "run": dataclasses.asdict(self.run_state),
                "adapter": lora.adapter_state(self.net),
                "best": self.best,
                "opt": self.opt.state_dict(),
            },
            self.state_path,
        )

    def try_resume(self) -> bool:
        """Continues from ``state.pt`` when it belongs to this very training; else starts afresh."""
        if not self.state_path.is_file():
            return False
        try:
            state = load_checkpoint(self.state_path)
            same = state.get("format") == STATE_FORMAT and state["signature"] == self._signature()
        except Exception as exc:  # a damaged state file: start again
            log.warning("%s unreadable (%s); training from the start", self.state_path, exc)
            return False
        if not same:
            log.info(
                "%s belongs to another training (photos, model or settings changed); starting again", self.state_path
            )
            return False
        lora.load_adapter_state(self.net, state["adapter"])
        self.opt.load_state_dict(state["opt"])
        self.best = state["best"]
        total = self.run_state.total
        self.run_state = _Run(**state["run"])
        self.run_state.total = max(total, self.run_state.step)
        return True

    # -- one step ----------------------------------------------------------------------------
    def loss(self, step: int) -> tuple[torch.Tensor, dict[str, float]]:
        cfg, net = self.cfg, self.net
        idx, flips, lqs, refs, w = self.batches.batch(step)
        hq = _to_tensor(
            [self.data.train[i][:, ::-1] if f else self.data.train[i] for i, f in zip(idx, flips, strict=True)],
            self.device,
        )
        lq = _to_tensor(lqs, self.device)
        ref = _to_tensor(refs, self.device)
        gt = torch.stack([self.codes[(i, f)] for i, f in zip(idx, flips, strict=True)])
        z_c = net.quantize.lookup(gt, net.config.latent_side).detach()
        feats = net.encode_features(lq)
        tokens = net.token_embeddings(feats[0])
        if net.reference is not None:  # a reference-trained network sees the person's other photo
            with torch.no_grad():
                id_emb = self.id_loss.net.embed_aligned(ref)
            ctx = net.reference.context(id_emb, net.encode_features(ref)[0])
            logits = net.reference.logits(net, tokens, ctx)
        else:
            logits = net.transform(tokens)
        if cfg.reference_prior:
            logits, feats = self._with_reference_prior(logits, feats, lqs, ref)
        ce = F.cross_entropy(logits.flatten(0, 1).float(), gt.flatten())
        feat = F.mse_loss(feats[0], z_c)
        out = net.decode_features(straight_through_quant(net, logits), feats, w=w, adain_latent=True)
        l1 = F.l1_loss(out, hq)
        loss = cfg.token_weight * ce + cfg.feat_weight * feat + cfg.l1_weight * l1
        logs = {"ce": ce.item(), "feat": feat.item(), "l1": l1.item()}
        if self.perceptual is not None:
            perc = self.perceptual(out, hq)
            loss = loss + cfg.perceptual_weight * perc
            logs["perc"] = perc.item()
        emb_out = self.id_loss.embed(out)
        with torch.no_grad():
            emb_hq, emb_ref = self.id_loss.embed(hq), self.id_loss.embed(ref)
        cos_hq, cos_ref = (emb_out * emb_hq).sum(-1), (emb_out * emb_ref).sum(-1)
        hid = ((1 - cfg.hard_lambda) * (1 - cos_hq) + cfg.hard_lambda * (1 - cos_ref)).mean()
        loss = loss + cfg.ids_weight * hid
        logs.update(hid=hid.item(), cos_hq=cos_hq.mean().item())
        return loss, {"loss": loss.item(), **logs}

    def _with_reference_prior(
        self, logits: torch.Tensor, feats: tuple[torch.Tensor, ...], lqs: list[np.ndarray], ref: torch.Tensor
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """The engine's reference prior on the faces it would apply it to (too soft to show who
        they are), the batch's reference photos as the references: the adapter learns what the
        prior leaves to it. The references' own encoding is not trained through (speed)."""
        weights = self.prior.weights([_at_template(f) for f in lqs]).to(self.device)
        if not bool(weights.any()):
            return logits, feats
        with torch.no_grad():
            ref_feats = self.net.encode_features(ref)
        return apply_reference_prior(self.net, logits, feats, ref_feats, weights, self.prior)

    def train_step(self) -> dict[str, float]:
        self.net.train()
        loss, logs = self.loss(self.run_state.step)
        self.opt.zero_grad(set_to_none=True)
        if torch.isfinite(loss):
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.params, 1.0)
            self.opt.step()
        else:
            logs["nan_skip"] = 1.0
        self.run_state.step += 1
        return logs

    # -- validation --------------------------------------------------------------------------
    @torch.no_grad()
    def restore_val(self) -> torch.Tensor:
        self.net.eval()
        outs = []
        for start in range(0, len(self.val_lq), 8):
            x = _to_tensor(self.val_lq[start : start + 8], self.device)
            outs.append(self.net(x, w=self.cfg.val_w)[0])
        return torch.cat(outs)

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        out = self.restore_val()
        hq = _to_tensor(self.val_hq, self.device)
        ids = float(self.id_loss.cosine(out, hq).mean())
        l1 = float(F.l1_loss(out, hq))
        self._last_out = out
        return {"step": float(self.run_state.step), "ids": ids, "l1": l1, "val": (1 - ids) + l1}

    def preview(self, out: torch.Tensor) -> Path:
        """[degraded | base network | with the adapter] of the first held-out face's severe version."""
        i = 1  # validation inputs are (moderate, severe) per face
        before = self._preview_before
        after = _to_images(out[i : i + 1])[0]
        row = [cv2.resize(im, (256, 256), interpolation=cv2.INTER_CUBIC) for im in (self.val_lq[i], before, after)]
        ok, png = cv2.imencode(".png", cv2.cvtColor(np.concatenate(row, axis=1), cv2.COLOR_RGB2BGR))
        if not ok:
            raise LikenessError("could not encode the preview image")
        path = self.profile.training_dir / "preview.png"
        write_bytes(path, png.tobytes())
        return path

    # -- the loop ----------------------------------------------------------------------------
    def run(self, progress: Progress | None = None, cancel: Callable[[], bool] | None = None) -> dict[str, Any]:
        self.profile.training_dir.mkdir(parents=True, exist_ok=True)
        resumed = self.try_resume()
        rs, cfg = self.run_state, self.cfg
        if not rs.before:
            with _lora_off(self.net):
                rs.before = self.validate()
            rs.best_val, rs.best_step = rs.before["val"], 0
        with _lora_off(self.net):
            self._preview_before = _to_images(self.restore_val()[1:2])[0]
        started = time.perf_counter()
        wall0 = rs.wall_s
        if progress:
            progress({"step": rs.step, "steps": rs.total, "eta_s": None, "resumed": resumed, "val": rs.before["val"]})
        stop = ""
        while rs.step < rs.total:
            if cancel is not None and cancel():
                self.save_state()
                raise CancelledError(f"training of {self.profile.name}'s adapter cancelled; run it again to continue")
            t0 = time.perf_counter()
            logs = self.train_step()
            rs.wall_s = wall0 + time.perf_counter() - started
            msg: dict[str, Any] = {"step": rs.step, "steps": rs.total, "loss": round(logs["loss"], 4)}
            if rs.step % cfg.val_every == 0 or rs.step == rs.total:
                val = self.validate()
                rs.history.append(val)
                msg["val"] = round(val["val"], 4)
                msg["ids"] = round(val["ids"], 4)
                if val["val"] < rs.best_val - 1e-4:
                    rs.best_val, rs.best_step, rs.bad_vals = val["val"], rs.step, 0
                    self.best = lora.adapter_state(self.net)
                else:
                    rs.bad_vals += 1
                msg["preview"] = str(self.preview(self._last_out))
                if rs.bad_vals >= cfg.patience:
                    stop = "early stopping"
            late = self.deadline_s is not None and rs.wall_s >= self.deadline_s
            if late and not stop:
                stop = "time budget"
            if rs.step % cfg.checkpoint_every == 0 or "val" in msg or stop:
                self.save_state()
            step_s = time.perf_counter() - t0
            msg["eta_s"] = round(step_s * (rs.total - rs.step), 1)
            if progress:
                progress(msg)
            if stop:
                break
        # The best adapter, scored once more for the record.
        lora.load_adapter_state(self.net, self.best)
        rs.after = self.validate()
        final_preview = self.preview(self._last_out)
        return {"stop": stop or "steps", "preview": final_preview}


class _lora_off:
    """Context: the attached adapter contributes nothing (B scaled to zero), then is restored."""

    def __init__(self, net: torch.nn.Module) -> None:
        self.mods = list(lora.lora_modules(net).values())

    def __enter__(self) -> None:
        self.saved = [m.scale for m in self.mods]
        for m in self.mods:
            m.scale = 0.0

    def __exit__(self, *exc: object) -> None:
        for m, s in zip(self.mods, self.saved, strict=True):
            m.scale = s


def _at_template(face: np.ndarray) -> np.ndarray:
    """A face at the network's size back at the 512 template (where the engine measures sharpness)."""
    if face.shape[0] == FFHQ_SIZE:
        return face
    return np.asarray(cv2.resize(face, (FFHQ_SIZE, FFHQ_SIZE), interpolation=cv2.INTER_CUBIC))


def _dlib_center() -> torch.Tensor | None:
    from engine.identity import make_embedder

    center = make_embedder("dlib").center
    return None if center is None else torch.from_numpy(center)


# ----------------------------------------------------------------------------- API


def resolve_model(model: str) -> tuple[str, Path, str]:
    """(name, file, sha256) of the restoration model to adapt; ``auto`` as the engine picks it."""
    from engine.models import ModelStore
    from engine.runtime.networks import Networks

    store = ModelStore()
    name = Networks(model, "cpu", store, "torch", None).model_name
    return name, store.path(name), store.sha256(name)


def train_adapter(
    profile: Profile | str,
    *,
    model: str = "auto",
    minutes: float | None = None,
    steps: int | None = None,
    device: str = "auto",
    progress: Progress | None = None,
    cancel: Callable[[], bool] | None = None,
    store: ProfileStore | None = None,
    config: PersonalConfig | None = None,
) -> AdapterRecord:
    """Trains ``profile``'s adapter and records it in the profile (see the module docstring).

    ``steps``: the step budget (default ``default_steps``); ``minutes``: a wall-clock budget
    (default ``DEFAULT_MINUTES`` on the CPU when ``steps`` is not given either). A run interrupted
    in any way continues where it stopped when called again with the same photos and model.
    """
    from engine.runtime.device import resolve_device

    if isinstance(profile, str):
        store = store or ProfileStore()
        profile = store.get(profile)
    store = store or ProfileStore(profile.folder.parent)
    cfg = config or PersonalConfig()
    profile = split_faces(profile, store)
    name, path, sha = resolve_model(model)
    dev = resolve_device(device)
    net = load_codeformer(path)
    n_train = sum(not f.held_out for f in profile.faces)
    total = steps if steps is not None else default_steps(n_train, cfg.batch_size)
    if minutes is None and steps is None and dev.type == "cpu":
        minutes = DEFAULT_MINUTES
    trainer = PersonalTrainer(profile, net, name, sha, dev, cfg, total, 60 * minutes if minutes else None)
    result = trainer.run(progress, cancel)
    rs = trainer.run_state
    meta = {
        "model": name,
        "model_sha256": sha,
        "rank": cfg.rank,
        "alpha": cfg.alpha,
        "person": profile.name,
        "steps": rs.step,
        "best_step": rs.best_step,
    }
    lora.save_adapter(profile.folder / ADAPTER_FILE, trainer.best, meta)
    preview = profile.folder / PREVIEW_FILE
    write_bytes(preview, Path(result["preview"]).read_bytes())
    record = AdapterRecord(
        file=ADAPTER_FILE,
        model=name,
        model_sha256=sha,
        rank=cfg.rank,
        photos=len(trainer.data.train),
        steps=rs.step,
        minutes=round(rs.wall_s / 60, 2),
        validation={
            "ids_before": round(rs.before["ids"], 4),
            "ids_after": round(rs.after["ids"], 4),
            "l1_before": round(rs.before["l1"], 4),
            "l1_after": round(rs.after["l1"], 4),
            "best_step": float(rs.best_step),
            "held_out": float(len(trainer.data.val)),
        },
        trained=time.strftime("%Y-%m-%d %H:%M:%S"),
    )
    store.save(dataclasses.replace(profile, adapter=record))
    _remove_training_dir(profile.training_dir)
    if progress:
        progress(
            {
                "step": rs.step,
                "steps": rs.total,
                "eta_s": 0,
                "done": True,
                "stop": result["stop"],
                "val": round(rs.after["val"], 4),
                "preview": str(preview),
            }
        )
    return record


def _remove_training_dir(folder: Path) -> None:
    import shutil

    shutil.rmtree(folder, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="likeness profile train", description="Train a profile's personal adapter on the person's photos."
    )
    parser.add_argument("name", help="the profile")
    parser.add_argument("--minutes", type=float, help=f"wall-clock budget (default on the CPU: {DEFAULT_MINUTES:g})")
    parser.add_argument("--steps", type=int, help="step budget (default: from the number of photos)")
    parser.add_argument("--model", default="auto", help="restoration model to adapt (default: the engine's)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    parser.add_argument("--rank", type=int, default=lora.DEFAULT_RANK, help="LoRA rank (default 4)")
    parser.add_argument("--json-progress", action="store_true", help="one JSON object per line on stdout")
    parser.add_argument("--checkpoint-every", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--profiles", default=None, help=argparse.SUPPRESS)  # another profile folder (tests)
    args = parser.parse_args(argv)
    cfg = PersonalConfig(rank=args.rank, alpha=float(args.rank))
    if args.checkpoint_every:
        cfg = dataclasses.replace(cfg, checkpoint_every=args.checkpoint_every)

    def show(msg: dict[str, Any]) -> None:
        if args.json_progress:
            print(json.dumps(msg), flush=True)
        elif "val" in msg or msg.get("done"):
            print(f"step {msg['step']}/{msg['steps']}  val {msg.get('val')}", file=sys.stderr, flush=True)

    try:
        store = ProfileStore(Path(args.profiles)) if args.profiles else ProfileStore()
        record = train_adapter(
            args.name,
            model=args.model,
            minutes=args.minutes,
            steps=args.steps,
            device=args.device,
            progress=show,
            store=store,
            config=cfg,
        )
    except LikenessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if not args.json_progress:
        v = record.validation
        print(
            f"{args.name}: adapter for {record.model} trained on {record.photos} photos, {record.steps} steps, "
            f"{record.minutes:.1f} min; held-out identity {v['ids_before']:.3f} → {v['ids_after']:.3f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
