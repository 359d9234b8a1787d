"""The album scan: faces cached by content, rescans that read nothing, people the user corrects.

Albums here are a few real photos of two identities from ../shared (HOG detector), so a scan
takes about a second once the identity network is loaded.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from engine import cli
from engine.album.index import DB_NAME, Album, cache_folder
from engine.album.scan import face_quality, scan_album
from engine.album.types import AlbumProgress
from engine.errors import CancelledError, LikenessError
from tests.conftest import REPO, shared_path

#: two identities whose three photos each the scan groups (one face a photo)
IDENTITIES = ("celeba_07201", "celeba_07204")


def _identity_photos() -> list[Path]:
    root = shared_path("data", "faces", "identities")
    return [root / identity / f"0{n}.jpg" for identity in IDENTITIES for n in (1, 2, 3)]


@pytest.fixture
def album(tmp_path) -> Path:
    return _make_album(tmp_path)


def _make_album(where: Path) -> Path:
    """Six photos of two people (one in a sub-folder), a text file and a damaged 'photo'."""
    folder = where / "album"
    (folder / "2019").mkdir(parents=True)
    for n, photo in enumerate(_identity_photos()):
        where = folder / "2019" if n == 5 else folder
        shutil.copyfile(photo, where / f"{photo.parent.name}_{photo.name}")
    (folder / "notes.txt").write_text("not a photo\n")
    (folder / "broken.jpg").write_bytes(b"this is no jpeg")
    return folder


@pytest.fixture(scope="module")
def scanned_once(tmp_path_factory) -> tuple[Path, Path]:
    """(album, data root) scanned once for the module: the tests start from copies of both."""
    base = tmp_path_factory.mktemp("scanned")
    folder = _make_album(base)
    scan_album(folder, root=base / "home")
    return folder, base / "home"


@pytest.fixture
def scanned(scanned_once, tmp_path) -> Path:
    """A scanned album of its own (photos and cache copied with their times: nothing to redo)."""
    template, home = scanned_once
    folder = tmp_path / "album"
    shutil.copytree(template, folder, copy_function=shutil.copy2)
    shutil.copytree(cache_folder(template, home), cache_folder(folder))
    return folder


def _identity_of(path: Path) -> str:
    return path.name.rsplit("_", 1)[0]


def test_a_scan_groups_people_skips_other_files_and_names_unreadable_ones(album, tmp_path):
    seen: list[AlbumProgress] = []
    report = scan_album(album, progress=seen.append)
    assert (report.photos, report.processed, report.cached, report.removed, report.skipped) == (7, 7, 0, 0, 1)
    assert report.unreadable == ["broken.jpg: not an image this program can read"]
    assert report.faces == 6
    assert seen[-1].text == "done"
    with Album.open(album) as a:
        people = a.people()
        assert report.people == len(people)
        for person in people:  # never two identities in one person
            assert len({_identity_of(f.photo) for f in person.faces}) == 1
            qualities = [f.quality for f in person.faces]
            assert qualities == sorted(qualities, reverse=True)
        assert sorted(len(p.faces) for p in people)[-2:] == [3, 3]
        face = people[0].faces[0]
        assert re.fullmatch(r"[0-9a-f]{16}:0", face.face_id)
        assert face.embedding.shape == (128,) and 0 <= face.quality <= 1
        assert a.face_image(face, size=128).shape == (128, 128, 3)
    assert not any(p.is_relative_to(album) for p in tmp_path.rglob(DB_NAME))  # nothing beside the photos


def test_a_rescan_reads_nothing_and_keeps_person_ids(scanned):
    album = scanned
    with Album.open(album) as a:
        before = {p.person_id: [f.face_id for f in p.faces] for p in a.people()}
    started = time.perf_counter()
    again = scan_album(album)
    assert (again.processed, again.cached, again.removed) == (0, 7, 0)
    assert time.perf_counter() - started < 1.0
    with Album.open(album) as a:
        assert {p.person_id: [f.face_id for f in p.faces] for p in a.people()} == before


def test_only_a_changed_photo_is_read_again_and_a_moved_one_is_recognised(scanned):
    album = scanned
    changed = album / "celeba_07201_02.jpg"
    pixels = cv2.imread(str(changed))
    assert pixels is not None
    changed.unlink()
    cv2.imwrite(str(changed), pixels, [cv2.IMWRITE_JPEG_QUALITY, 80])  # same picture, new bytes
    moved = album / "celeba_07204_01.jpg"
    with Album.open(album) as a:
        moved_ids = {f.face_id for f in a.faces() if f.photo == moved}
    (album / "elsewhere").mkdir()
    moved.rename(album / "elsewhere" / "renamed.jpg")
    report = scan_album(album)
    assert (report.processed, report.cached, report.removed) == (1, 6, 1)
    with Album.open(album) as a:
        faces = {f.face_id: f for f in a.faces()}
        assert all(faces[i].photo == album / "elsewhere" / "renamed.jpg" for i in moved_ids)
        assert len(faces) == 6


def test_a_cancelled_scan_keeps_its_photos_and_the_next_one_carries_on(album):
    cancel = threading.Event()

    def stop_after_two(p: AlbumProgress) -> None:
        if not p.text.startswith("checking") and p.done == 2:
            cancel.set()

    with pytest.raises(CancelledError, match="scan again"):
        scan_album(album, progress=stop_after_two, cancel=cancel)
    with Album.open(album) as a:
        assert len(a.known_photos()) == 3  # the photo being read when asked finishes first
    report = scan_album(album)
    assert (report.processed, report.cached) == (4, 3)
    assert report.faces == 6


def test_corrections_survive_rescans_and_a_rejected_face_stays_out(scanned):
    album = scanned
    with Album.open(album) as a:
        first, second = a.people()[:2]
        a.rename(first.person_id, "Ada")
        wrong = second.faces[-1].face_id
        a.reject([wrong])
        keep, *split_off = [f.face_id for f in first.faces]
        new = a.split(first.person_id, split_off[:1])
        assert a.person(new).confirmed and [f.face_id for f in a.person(new).faces] == split_off[:1]
    shutil.copyfile(shared_path("data", "faces", "identities", "celeba_07201", "04.jpg"), album / "new.jpg")
    report = scan_album(album)  # a new photo: the faces are grouped again
    assert report.processed == 1
    with Album.open(album) as a:
        people = {p.person_id: p for p in a.people()}
        assert people[first.person_id].name == "Ada"
        assert keep in {f.face_id for f in people[first.person_id].faces}
        assert [f.face_id for f in people[new].faces] == split_off[:1]
        assert wrong not in {f.face_id for p in people.values() for f in p.faces}
        assert wrong in a.rejected()
        merged = a.merge([first.person_id, new])
        assert merged == first.person_id and new not in {p.person_id for p in a.people()}
        with pytest.raises(LikenessError, match="no person"):
            a.rename("nobody", "x")
    scan_album(album)
    with Album.open(album) as a:
        assert a.person(first.person_id).name == "Ada"


def test_forget_deletes_the_cache_and_open_then_asks_for_a_scan(scanned):
    album = scanned
    cache = cache_folder(album)
    assert (cache / DB_NAME).is_file()
    Album.open(album).forget()
    assert not cache.exists()
    with pytest.raises(LikenessError, match="not been scanned"):
        Album.open(album)
    assert all(p.exists() for p in _identity_photos())


def test_face_quality_prefers_large_sharp_frontal_faces():
    assert face_quality(100, 250, 0) == 1.0
    assert face_quality(1, 30, 60) == 0.0
    assert face_quality(30, 150, 5) > face_quality(30, 150, 30) > face_quality(5, 150, 30)


def test_the_cli_scans_lists_and_corrects(album, capsys):
    assert cli.main(["album", "people", str(album)]) == 1
    err = capsys.readouterr().err
    assert "error: " in err and "not been scanned" in err and "Traceback" not in err
    assert cli.main(["album", "scan", str(album)]) == 0
    out, err = capsys.readouterr()
    assert "7 photos (7 new or changed, 0 cached, 0 removed), 1 other files skipped, 1 unreadable" in out
    assert "broken.jpg: not an image" in out and "photos/s" in out and "[0/7]" in err
    assert cli.main(["album", "scan", str(album), "-q"]) == 0
    out, err = capsys.readouterr()
    assert "(0 new or changed, 7 cached, 0 removed)" in out and err == ""
    with Album.open(album) as a:
        people = a.people()
    p1, p2 = people[0].person_id, people[1].person_id
    face = people[1].faces[-1].face_id
    assert cli.main(["album", "rename", str(album), p1, "Ada"]) == 0
    assert cli.main(["album", "people", str(album), "--faces"]) == 0
    out = capsys.readouterr().out
    assert re.search(rf"{p1}\s+Ada\s+3", out) and face in out
    assert cli.main(["album", "reject", str(album), face]) == 0
    assert cli.main(["album", "split", str(album), p1, people[0].faces[0].face_id]) == 0
    assert cli.main(["album", "merge", str(album), p1, p2]) == 0
    capsys.readouterr()
    assert cli.main(["album", "reject", str(album), "0000000000000000:9"]) == 1
    assert "error: 0000000000000000:9: no such face" in capsys.readouterr().err
    assert cli.main(["album", "forget", str(album)]) == 0
    assert not cache_folder(album).exists()


@pytest.mark.slow
def test_a_killed_scan_resumes_without_reading_finished_photos_again(tmp_path):
    folder = tmp_path / "album"
    folder.mkdir()
    for n, photo in enumerate(_identity_photos() + _identity_photos()[:2]):  # enlarged: each takes a moment
        image = cv2.imread(str(photo))
        assert image is not None
        cv2.imwrite(str(folder / f"{n:02d}.jpg"), cv2.resize(image, None, fx=1.5 + n * 0.05, fy=1.5 + n * 0.05))
    home = tmp_path / "home"
    env = {**os.environ, "LIKENESS_HOME": str(home)}
    cmd = [sys.executable, "-m", "engine.cli", "album", "scan", str(folder), "-q"]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    db = cache_folder(folder, home) / DB_NAME

    def photos_done() -> int:
        if not db.is_file():
            return 0
        try:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as con:
                return con.execute("SELECT count(*) FROM photos").fetchone()[0]
        except sqlite3.OperationalError:  # the tables are being made
            return 0

    deadline = time.monotonic() + 120
    while photos_done() < 2:
        assert proc.poll() is None, f"finished before it could be killed: {proc.stderr.read().decode()[-2000:]}"  # type: ignore[union-attr]
        assert time.monotonic() < deadline, "no progress to kill"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = photos_done()
    assert 2 <= done < 8
    again = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert f"8 photos ({8 - done} new or changed, {done} cached, 0 removed)" in again.stdout
    with Album.open(folder, home) as a:
        assert len(a.known_photos()) == 8
        assert not a.needs_grouping()
    assert np.all([f.photo.is_file() for f in Album.open(folder, home).faces()])
