"""``likeness profile``: create, list, show, choose references, train and delete person profiles.

Importing this module loads no torch (the CLI starts without it): the commands that align and
embed faces, or train, import their modules when they run.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from ..errors import LikenessError
from .store import ProfileStore

#: The training package implements ``profile train`` (it builds on the engine, not the reverse).
TRAIN_MODULE = "training.personalise"


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Registers ``likeness profile`` and its actions."""
    p = sub.add_parser("profile", help="person profiles: their best reference faces and a trained adapter")
    psub = p.add_subparsers(dest="action", required=True)

    c = psub.add_parser("create", help="make a profile from photos of one person, or from an album's person")
    c.add_argument("name")
    source = c.add_mutually_exclusive_group(required=True)
    source.add_argument("--photos", nargs="+", type=Path, metavar="FILE", help="photos whose main face is the person")
    source.add_argument("--album", type=Path, metavar="FOLDER", help="a scanned album (`likeness album scan`)")
    c.add_argument("--person", metavar="ID", help="with --album: the person's id or name (`likeness album people`)")
    c.add_argument("--detector", default="auto", choices=("auto", "hog", "cnn", "retinaface"))
    c.set_defaults(func=cmd_create)

    ls = psub.add_parser("list", help="every profile, with its faces and adapter")
    ls.set_defaults(func=cmd_list)

    s = psub.add_parser("show", help="one profile's faces (chosen references marked) and adapter")
    s.add_argument("name")
    s.set_defaults(func=cmd_show)

    ch = psub.add_parser("choose", help="choose which of a profile's faces are its references")
    ch.add_argument("name")
    ch.add_argument("faces", nargs="+", type=int, metavar="FACE", help="face numbers as `profile show` lists them")
    ch.set_defaults(func=cmd_choose)

    t = psub.add_parser("train", help="fine-tune the person's adapter (see `likeness profile train NAME --help`)")
    t.add_argument("rest", nargs=argparse.REMAINDER)
    t.set_defaults(func=cmd_train)

    d = psub.add_parser("delete", help="delete a profile and every file made from the person's photos")
    d.add_argument("name")
    d.set_defaults(func=cmd_delete)


def cmd_create(args: argparse.Namespace) -> int:
    store = ProfileStore()
    if store.exists(args.name):
        raise LikenessError(f"a profile called {args.name!r} exists already; delete it first or choose another name")
    faces = None
    if args.album is not None:
        if not args.person:
            raise LikenessError("--album needs --person ID (see `likeness album people FOLDER`)")
        faces = _album_person_faces(args.album, args.person)
    elif missing := [p for p in args.photos if not p.is_file()]:
        raise LikenessError(f"{missing[0]}: no such file")
    build = importlib.import_module("engine.profiles.build")  # loads torch
    warnings: list[str] = []
    profile = build.create_profile(
        args.name, photos=args.photos, album_faces=faces, store=store, detector=args.detector, warnings=warnings
    )
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"profile {profile.name!r}: {len(profile.faces)} faces, {len(profile.chosen)} chosen as references")
    print(f"  train its adapter with: likeness profile train {_quoted(profile.name)}")
    return 0


def _album_person_faces(folder: Path, person: str) -> list:
    album = importlib.import_module("engine.album.index").Album.open(folder)
    people = album.people()
    for candidate in people:
        if person in (candidate.person_id, candidate.name):
            return list(candidate.faces)
    known = ", ".join(f"{p.person_id}{f' ({p.name})' if p.name else ''}" for p in people[:12]) or "none"
    raise LikenessError(f"{folder}: no person {person!r} in this album (people: {known})")


def cmd_list(args: argparse.Namespace) -> int:
    profiles = list(ProfileStore())
    if not profiles:
        print("no profiles yet: make one with `likeness profile create NAME --photos FILE...`")
        return 0
    for profile in sorted(profiles, key=lambda p: p.name.casefold()):
        adapter = profile.adapter
        trained = (
            f"adapter for {adapter.model} ({adapter.photos} photos, {adapter.trained})" if adapter else "no adapter"
        )
        print(f"{profile.name}\t{len(profile.faces)} faces, {len(profile.chosen)} references\t{trained}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    profile = ProfileStore().get(args.name)
    print(f"{profile.name}  (created {profile.created}, {profile.folder})")
    print("  face  ref  sharpness   size    yaw  source")
    for i, face in enumerate(profile.faces):
        mark = "yes" if face.chosen else "-"
        held = "  (held out for training's validation)" if face.held_out else ""
        print(f"  {i:4d}  {mark:>3}  {face.sharpness:9.1f} {face.size:6.0f} {face.yaw:6.1f}  {face.source}{held}")
    adapter = profile.adapter
    if adapter is None:
        print(f"  no adapter yet: likeness profile train {_quoted(profile.name)}")
    else:
        scores = ", ".join(f"{k} {v:.3f}" for k, v in adapter.validation.items())
        print(
            f"  adapter: {adapter.model}, rank {adapter.rank}, {adapter.photos} photos, {adapter.steps} steps "
            f"in {adapter.minutes:.1f} min ({adapter.trained}){'; ' + scores if scores else ''}"
        )
    return 0


def cmd_choose(args: argparse.Namespace) -> int:
    profile = ProfileStore().set_chosen(args.name, args.faces)
    print(f"profile {profile.name!r}: references are faces {', '.join(map(str, sorted(set(args.faces))))}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    try:
        module = importlib.import_module(TRAIN_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name and TRAIN_MODULE.startswith(exc.name):
            raise LikenessError(
                f"`likeness profile train` needs the training package ({TRAIN_MODULE}), which this installation lacks"
            ) from exc
        raise
    return module.main(args.rest)


def cmd_delete(args: argparse.Namespace) -> int:
    folder = ProfileStore().delete(args.name)
    print(f"deleted profile {args.name!r} ({folder}): its faces, identity vectors and adapter")
    return 0


def _quoted(name: str) -> str:
    return name if name.replace("-", "").replace("_", "").isalnum() else repr(name)
