"""``likeness train``: train the CodeFormer stages and export a model.

    likeness train STAGE --config NAME|FILE [--out DIR] [--resume] [--init CKPT]
                         [--steps N] [--data DIR] [--max-minutes M] [--device cpu|cuda] [--no-progress]
    likeness train export CHECKPOINT OUT.safetensors [--fp32] [--raw]
    likeness train slim CHECKPOINT OUT.pt        (what the next stage starts from, ~1/7 the size)
    likeness train configs
    likeness train fidelity --data FACE_CACHE [--out DIR] [--net-minutes 36] [--blend-minutes 5]
                                               (the fidelity path: training/fidelity.py)

``STAGE`` is 1, 2 or 3 and must match the config's ``stage``. The default output folder is
``../cache/train/<config name>``. ``engine/cli.py`` names the ``train`` subcommand and imports
this module only when it is used (``main(argv)`` gets the arguments after ``train``), so the
engine never imports ``training`` otherwise and an app packaged without ``training`` says so in
one line. ``python -m training.cli ...`` is the same program without the engine's CLI.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="likeness train", description=__doc__.splitlines()[0] if __doc__ else None)
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("stage", help="train one stage (the default: `likeness train 1 ...`)")
    t.add_argument("stage", type=int, choices=(1, 2, 3, 4), help="1-3: the CodeFormer stages; 4: the reference adapter")
    t.add_argument("--config", required=True, help="config name in training/configs or a JSON file")
    t.add_argument("--out", type=Path, help="output folder (checkpoints, logs, samples)")
    t.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    t.add_argument("--init", help="checkpoint of the previous stage (overrides the config's)")
    t.add_argument("--steps", type=int, help="override the config's step count")
    t.add_argument("--data", help="face cache or folder to train on (overrides the config's data path)")
    t.add_argument("--device", choices=("cpu", "cuda"))
    t.add_argument(
        "--max-minutes", type=float, help="wall-clock budget; the stage stops (with a checkpoint) when it is spent"
    )
    t.add_argument("--no-progress", action="store_true")
    e = sub.add_parser("export", help="write a checkpoint's EMA weights as a Likeness .safetensors model")
    e.add_argument("checkpoint", type=Path)
    e.add_argument("out", type=Path)
    e.add_argument("--fp32", action="store_true", help="keep float32 (default: float16)")
    e.add_argument("--raw", action="store_true", help="export the raw weights instead of the EMA")
    sl = sub.add_parser("slim", help="a checkpoint's weights for the next stage (EMA, fp16), without optimiser state")
    sl.add_argument("checkpoint", type=Path)
    sl.add_argument("out", type=Path)
    sub.add_parser("configs", help="list the known configs")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "train":  # `python -m training.cli train 1 ...` (scripts/train_lite.sh)
        argv = argv[1:]
    if argv and argv[0] == "fidelity":  # the fidelity U-Net and region blend have their own options
        from .fidelity import main as train_fidelity

        return train_fidelity(argv[1:])
    if argv and argv[0] in ("1", "2", "3", "4"):  # `likeness train 1 --config ...`
        argv.insert(0, "stage")
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    from .configs import config_names, load_config

    if args.cmd == "configs":
        print("\n".join(config_names()))
        return 0
    if args.cmd == "slim":
        from .stages import slim_checkpoint

        slim_checkpoint(args.checkpoint, args.out)
        print(f"wrote {args.out}")
        return 0
    if args.cmd == "export":
        from .stages import export_model

        export_model(args.checkpoint, args.out, half=not args.fp32, ema=not args.raw)
        print(f"wrote {args.out}")
        return 0
    overrides = {"steps": args.steps} if args.steps else {}
    try:
        cfg = load_config(args.config, **overrides)
        if args.data:
            cfg = cfg.replace(data={**cfg.data, "path": args.data})
    except (FileNotFoundError, ValueError) as exc:
        print(f"likeness train: error: {exc}", file=sys.stderr)
        return 2
    if cfg.stage != args.stage:
        print(f"likeness train: error: config {args.config} is stage {cfg.stage}, not {args.stage}", file=sys.stderr)
        return 2
    out = args.out or Path("../cache/train") / cfg.name
    run = dict(
        resume=args.resume,
        init=args.init,
        device=args.device,
        progress=not args.no_progress,
        max_minutes=args.max_minutes,
    )
    if cfg.stage == 4:  # the reference adapter on a frozen backbone (training.reference_stage)
        from .reference_stage import export_reference_model, train_reference

        path = train_reference(cfg, out, **run)
        export_reference_model(path, Path(out) / "model.safetensors")
        print(f"reference adapter checkpoint: {path}; model with the adapter: {Path(out) / 'model.safetensors'}")
        return 0
    from .stages import train_stage

    path = train_stage(cfg, out, **run)
    print(f"stage {cfg.stage} checkpoint: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
