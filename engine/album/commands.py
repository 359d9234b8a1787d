"""``likeness album``: scan a folder for people, list and correct them.

    likeness album scan FOLDER [--detector hog|cnn|auto] [-q]
    likeness album people FOLDER [--faces]
    likeness album rename FOLDER PERSON NAME
    likeness album merge FOLDER PERSON PERSON...
    likeness album split FOLDER PERSON FACE_ID...
    likeness album reject FOLDER FACE_ID...
    likeness album forget FOLDER

The scan loads the detector and the identity network (torch), so ``engine.album.scan`` is
imported when a scan starts, never with the CLI.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path

from .index import Album
from .types import AlbumProgress, Person, ScanReport

EXAMPLES = 3


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Registers ``likeness album``."""
    album = sub.add_parser("album", help="find the people in a folder of photos, name and correct them")
    asub = album.add_subparsers(dest="album_action", required=True)

    scan = asub.add_parser("scan", help="find and group the faces of every photo under FOLDER (cached; rerun any time)")
    scan.add_argument("folder", type=Path)
    scan.add_argument("--detector", choices=("hog", "cnn", "auto"), default="hog", help="face detector (default hog)")
    scan.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    scan.set_defaults(func=cmd_scan)

    people = asub.add_parser("people", help="the people found in a scanned album")
    people.add_argument("folder", type=Path)
    people.add_argument("--faces", action="store_true", help="list each person's faces (ids for split and reject)")
    people.set_defaults(func=cmd_people)

    rename = asub.add_parser("rename", help="name a person")
    rename.add_argument("folder", type=Path)
    rename.add_argument("person")
    rename.add_argument("name")
    rename.set_defaults(func=cmd_rename)

    merge = asub.add_parser("merge", help="make one person of several (keeps the first id)")
    merge.add_argument("folder", type=Path)
    merge.add_argument("people", nargs="+", metavar="PERSON")
    merge.set_defaults(func=cmd_merge)

    split = asub.add_parser("split", help="move some faces of a person into a new person")
    split.add_argument("folder", type=Path)
    split.add_argument("person")
    split.add_argument("faces", nargs="+", metavar="FACE_ID")
    split.set_defaults(func=cmd_split)

    reject = asub.add_parser("reject", help="remove wrong faces for good (a rescan never puts them back)")
    reject.add_argument("folder", type=Path)
    reject.add_argument("faces", nargs="+", metavar="FACE_ID")
    reject.set_defaults(func=cmd_reject)

    forget = asub.add_parser("forget", help="delete the album's cache (faces, people, names); photos untouched")
    forget.add_argument("folder", type=Path)
    forget.set_defaults(func=cmd_forget)


def cmd_scan(args: argparse.Namespace) -> int:
    scan = importlib.import_module(f"{__package__}.scan")  # loads torch: only when a scan runs
    report: ScanReport = scan.scan_album(
        args.folder, detector=args.detector, progress=None if args.quiet else _progress
    )
    for line in summary(report):
        print(line)
    with Album.open(args.folder) as album:
        print_people(album.people(), faces=False)
    return 0


def cmd_people(args: argparse.Namespace) -> int:
    with Album.open(args.folder) as album:
        print_people(album.people(), faces=args.faces)
    return 0


def cmd_rename(args: argparse.Namespace) -> int:
    with Album.open(args.folder) as album:
        album.rename(args.person, args.name)
    print(f"{args.person}: named {args.name!r}")
    return 0


def cmd_merge(args: argparse.Namespace) -> int:
    with Album.open(args.folder) as album:
        kept = album.merge(args.people)
        print(f"merged into {kept} ({len(album.person(kept).faces)} faces)")
    return 0


def cmd_split(args: argparse.Namespace) -> int:
    with Album.open(args.folder) as album:
        new = album.split(args.person, args.faces)
    print(f"{len(args.faces)} faces moved from {args.person} to new person {new}")
    return 0


def cmd_reject(args: argparse.Namespace) -> int:
    with Album.open(args.folder) as album:
        album.reject(args.faces)
    print(f"{len(args.faces)} faces rejected; they stay out of every person")
    return 0


def cmd_forget(args: argparse.Namespace) -> int:
    album = Album.open(args.folder)
    album.forget()
    print(f"{album.folder}: album cache deleted ({album.cache})")
    return 0


def summary(report: ScanReport) -> list[str]:
    """The scan's result in a few lines."""
    lines = [
        f"{report.folder}: {report.photos} photos ({report.processed} new or changed, {report.cached} cached, "
        f"{report.removed} removed), {report.skipped} other files skipped, {len(report.unreadable)} unreadable"
    ]
    lines += [f"  unreadable: {line}" for line in report.unreadable]
    rate = f", {report.processed / report.seconds:.1f} photos/s" if report.processed and report.seconds > 0 else ""
    lines.append(f"{report.faces} faces, {report.people} people in {report.seconds:.1f} s{rate}")
    return lines


def print_people(people: Sequence[Person], *, faces: bool) -> None:
    """A table: id, name, faces, example files (and each face with ``faces``)."""
    if not people:
        print("no people found")
        return
    print(f"{'person':<10} {'name':<20} {'faces':>5}  examples")
    for person in people:
        examples = ", ".join(dict.fromkeys(f.photo.name for f in person.faces[:EXAMPLES]))
        name = person.name or "-"
        print(f"{person.person_id:<10} {name:<20} {len(person.faces):>5}  {examples}")
        if faces:
            for face in person.faces:
                print(f"    {face.face_id}  quality {face.quality:.2f}  {face.size:.0f} px  {face.photo.name}")


def _progress(p: AlbumProgress) -> None:
    if p.total:
        print(f"  [{p.done}/{p.total}] {p.text}", file=sys.stderr, flush=True)
    else:
        print(f"  {p.text}", file=sys.stderr, flush=True)
