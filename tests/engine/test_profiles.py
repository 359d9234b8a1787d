"""Person profiles: the store on disk, making one from photos, which face is whose, and restoring
with a profile (a face that is nobody's comes out exactly as without profiles)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from engine import cli
from engine.api import RestoreOptions, Restorer, RestoreRequest
from engine.identity import make_embedder
from engine.imageio import read_image, write_image
from engine.models import ModelStore
from engine.nets import lora
from engine.nets.codeformer import load_codeformer
from engine.profiles.build import create_profile
from engine.profiles.match import MATCH, UNSURE, match_face
from engine.profiles.store import ADAPTER_FILE, PROFILE_FILE, AdapterRecord, ProfileError, ProfileFace, ProfileStore
from engine.profiles.use import load_profile
from engine.references import analyse_reference
from tests.conftest import shared_path


def _face(i: int) -> tuple[ProfileFace, bytes]:
    return ProfileFace("", f"/photos/{i}.jpg", 0, 10.0 + i, 100.0, 0.0), b"png" * (i + 1)


def test_store_creates_lists_chooses_and_deletes_everything(tmp_path):
    store = ProfileStore(tmp_path / "profiles")
    profile = store.create("Ana María", [_face(0), _face(1), _face(2)], np.eye(3, 128, dtype=np.float32))
    assert store.names() == ["Ana María"]
    assert [f.file for f in profile.faces] == ["faces/00.png", "faces/01.png", "faces/02.png"]
    assert (profile.folder / "faces/01.png").read_bytes() == b"pngpng"
    assert store.get("Ana María").embeddings().shape == (3, 128)
    chosen = store.set_chosen("Ana María", [2])
    assert [f.chosen for f in chosen.faces] == [False, False, True]
    assert [f.chosen for f in store.get("Ana María").faces] == [False, False, True]
    with pytest.raises(ProfileError, match="exists already"):
        store.create("Ana María", [_face(0)], np.zeros((1, 128), np.float32))
    with pytest.raises(ProfileError, match="no face 7"):
        store.set_chosen("Ana María", [7])
    store.delete("Ana María")
    assert list((tmp_path / "profiles").iterdir()) == []  # nothing derived from the photos is left
    with pytest.raises(ProfileError, match="no profile called 'Ana María'"):
        store.get("Ana María")


@pytest.mark.parametrize("name", ["", "a/b", "x" * 65, "tab\there"])
def test_unusable_names_are_refused(tmp_path, name):
    with pytest.raises(ProfileError, match="not a usable profile name"):
        ProfileStore(tmp_path).create(name, [_face(0)], np.zeros((1, 128), np.float32))


def test_names_that_differ_only_in_punctuation_get_separate_folders(tmp_path):
    store = ProfileStore(tmp_path)
    a = store.create("Jo Smith", [_face(0)], np.zeros((1, 128), np.float32))
    b = store.create("Jo-Smith", [_face(1)], np.zeros((1, 128), np.float32))
    assert a.folder != b.folder and store.names() == ["Jo Smith", "Jo-Smith"]


def test_a_damaged_profile_is_named_not_a_traceback(tmp_path):
    store = ProfileStore(tmp_path)
    profile = store.create("Bo", [_face(0)], np.zeros((1, 128), np.float32))
    (profile.folder / PROFILE_FILE).write_text("{not json")
    with pytest.raises(ProfileError, match="damaged.*delete it and create it again"):
        store.get("Bo")
    assert store.names() == []  # listing skips it


# -- real faces ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def people():
    """Photos of two held-out identities of the shared data: (first person's, second person's)."""
    faces = shared_path("data", "faces")
    ids = (faces / "test_identities.txt").read_text().split()
    first = sorted((faces / "identities" / ids[0]).glob("*.jpg"))
    second = sorted((faces / "identities" / ids[1]).glob("*.jpg"))
    return first, second


@pytest.fixture
def store(tmp_path):
    return ProfileStore(tmp_path / "profiles")


def test_a_profile_from_photos_ranks_faces_and_flags_someone_else(people, store):
    first, second = people
    warnings: list[str] = []
    photos = [*first[:4], second[0], first[0]]  # another person, and one photo given twice
    profile = create_profile("First", photos=photos, store=store, detector="hog", warnings=warnings)
    assert len(profile.faces) == 5
    assert any("given twice" in w for w in warnings)
    stranger = [f for f in profile.faces if Path(f.source).name == second[0].name and second[0].parent.name in f.source]
    assert len(stranger) == 1 and not stranger[0].chosen
    assert any("may show someone else" in w and second[0].name in w for w in warnings)
    assert all(f.chosen for f in profile.faces if f is not stranger[0])
    # each face is stored aligned, and its vector is the mirror-averaged identity
    loaded = load_profile(profile)
    assert len(loaded.references) == 4 and loaded.references[0].aligned.shape == (512, 512, 3)
    assert np.allclose(profile.embeddings()[0], loaded.references[0].verification, atol=1e-3)


def test_faces_are_matched_to_their_person_only(people, store):
    first, second = people
    a = load_profile(create_profile("A", photos=first[:5], store=store, detector="hog"))
    b = load_profile(create_profile("B", photos=second[:5], store=store, detector="hog"))
    embedder = make_embedder()
    mine = analyse_reference(first[6], detector="hog")
    theirs = analyse_reference(second[6], detector="hog")
    found = match_face(0, mine.aligned, mine.detection.size, [a, b], None, embedder)
    assert found.profile is a and found.verdict == MATCH
    found = match_face(0, theirs.aligned, theirs.detection.size, [a, b], None, embedder)
    assert found.profile is b
    # a twin profile of the same person: the face is both people's, so nobody's
    twin = replace(a, profile=replace(a.profile, name="A again"))
    found = match_face(3, mine.aligned, mine.detection.size, [a, twin], None, embedder)
    assert found.profile is None and "looks like both A and A again" in found.notice
    # too small to identify: only a profile the user named is used
    found = match_face(1, mine.aligned, 12.0, [a, b], None, embedder)
    assert found.profile is None and found.verdict == UNSURE and "--profile NAME" in found.notice
    assert match_face(1, mine.aligned, 12.0, [a, b], "A", embedder).profile is a


def test_restoring_with_profiles_leaves_other_peoples_faces_exactly_as_before(people, tmp_path):
    first, second = people
    store = ProfileStore(tmp_path / "profiles")
    create_profile("First", photos=first[:6], store=store, detector="hog")
    restorer = Restorer(profile_store=store)
    plain = RestoreOptions(detector="hog", upscale=1)
    auto = replace(plain, profile="auto")
    other = restorer.restore(RestoreRequest(second[7], None, plain))
    other_auto = restorer.restore(RestoreRequest(second[7], None, auto))
    assert [f.profile for f in other_auto.faces] == [None] * len(other_auto.faces)
    assert np.array_equal(other.image, other_auto.image)
    named = restorer.restore(RestoreRequest(second[7], None, replace(plain, profile="First")))
    assert np.array_equal(other.image, named.image)
    assert any("no face looks like First" in w for w in named.warnings)
    mine = restorer.restore(RestoreRequest(first[7], None, auto))
    assert [f.profile for f in mine.faces if f.selected] == ["First"]


def test_cli_creates_shows_chooses_and_deletes_profiles(people, private_home, capsys):
    first, _ = people
    assert cli.main(["profile", "create", "Cli Person", "--photos", *map(str, first[:3]), "--detector", "hog"]) == 0
    assert "3 faces, 3 chosen" in capsys.readouterr().out
    assert cli.main(["profile", "list"]) == 0
    assert "Cli Person\t3 faces, 3 references\tno adapter" in capsys.readouterr().out
    assert cli.main(["profile", "choose", "Cli Person", "1"]) == 0
    capsys.readouterr()
    assert cli.main(["profile", "show", "Cli Person"]) == 0
    shown = capsys.readouterr().out
    assert shown.count(" yes ") == 1 and "no adapter yet" in shown
    assert cli.main(["profile", "create", "Cli Person", "--photos", str(first[0])]) == 1
    assert "exists already" in capsys.readouterr().err
    assert cli.main(["profile", "delete", "Cli Person"]) == 0
    assert list((private_home / "profiles").iterdir()) == []
    assert cli.main(["profile", "show", "Cli Person"]) == 1
    assert "no profile called 'Cli Person'" in capsys.readouterr().err
    assert cli.main(["restore", str(first[0]), "--profile", "Cli Person"]) == 2


def test_cli_refuses_a_missing_photo_and_a_photo_without_a_face(tmp_path, capsys):
    assert cli.main(["profile", "create", "X", "--photos", str(tmp_path / "nope.jpg")]) == 1
    assert "nope.jpg: no such file" in capsys.readouterr().err
    blank = tmp_path / "wall.png"
    write_image(blank, np.full((120, 160, 3), 128, np.uint8))
    assert cli.main(["profile", "create", "X", "--photos", str(blank), "--detector", "hog"]) == 1
    err = capsys.readouterr().err
    assert "none of the 1 photos showed a usable face" in err and "wall.png" in err


def test_profile_json_is_plain_and_versioned(tmp_path):
    profile = ProfileStore(tmp_path).create("P", [_face(0)], np.zeros((1, 128), np.float32))
    data = json.loads((profile.folder / PROFILE_FILE).read_text())
    assert data["format"] == 1 and data["name"] == "P" and data["adapter"] is None


def test_the_live_preview_names_the_profile_of_a_face_and_ignores_others(people, tmp_path):
    first, second = people
    store = ProfileStore(tmp_path / "profiles")
    create_profile("First", photos=first[:6], store=store, detector="hog")
    preview = Restorer(profile_store=store).preview()
    options = RestoreOptions(detector="hog", profile="auto")
    aligned, restored = preview.render(1, first[7], 0, 0.5, options)
    assert restored.shape == aligned.shape and preview.faces(1, first[7], options)[0].profile == "First"
    preview.render(2, second[7], 0, 0.5, options)
    assert preview.faces(2, second[7], options)[0].profile is None
    off = replace(options, profile=None)
    _, plain = preview.render(1, first[7], 0, 0.5, off)
    assert np.array_equal(plain, restored)  # no adapter yet: the same network


def _with_adapter(store: ProfileStore, name: str, model: str = "likeness-lite", model_sha256: str = "") -> None:
    """Gives profile ``name`` an adapter that visibly changes the network (random LoRA weights)."""
    net = load_codeformer(ModelStore().path("likeness-lite"))
    lora.add_lora(net, rank=4)
    generator = torch.Generator().manual_seed(0)
    state = {k: torch.randn(v.shape, generator=generator) * 0.05 for k, v in lora.adapter_state(net).items()}
    profile = store.get(name)
    meta = {"model": model, "rank": 4, "alpha": 4, "model_sha256": model_sha256}
    lora.save_adapter(profile.folder / ADAPTER_FILE, state, meta)
    record = AdapterRecord(ADAPTER_FILE, model, "", 4, 6, 1, 0.1)
    store.save(replace(profile, adapter=record))


def test_an_adapter_changes_its_persons_faces_only(people, tmp_path):
    first, second = people
    store = ProfileStore(tmp_path / "profiles")
    create_profile("First", photos=first[:6], store=store, detector="hog")
    damaged = tmp_path / "damaged.png"  # small and soft: the generative network has a share
    rgb = read_image(first[7]).rgb
    write_image(
        damaged, cv2.GaussianBlur(cv2.resize(rgb, None, fx=0.3, fy=0.3, interpolation=cv2.INTER_AREA), (0, 0), 1.2)
    )
    named = RestoreOptions(detector="hog", upscale=1, profile="First")
    before = Restorer(profile_store=store).restore(RestoreRequest(damaged, None, named))
    _with_adapter(store, "First")
    restorer = Restorer(profile_store=store)
    after = restorer.restore(RestoreRequest(damaged, None, named))
    assert [f.profile for f in after.faces if f.selected] == ["First"]
    x0, y0, x1, y1 = (int(v) for v in after.faces[0].box)
    face_change = np.abs(before.image.astype(int) - after.image.astype(int))[y0:y1, x0:x1].mean()
    assert face_change > 0.3, face_change  # the adapter's network restored it (identical otherwise)
    plain = RestoreOptions(detector="hog", upscale=1)
    other, other_auto = (
        restorer.restore(RestoreRequest(second[7], None, o)) for o in (plain, replace(plain, profile="auto"))
    )
    assert np.array_equal(other.image, other_auto.image)


def test_a_face_too_damaged_to_identify_is_guided_by_the_references_on_the_plain_network(people, tmp_path):
    """Under the references' guidance the adapter lowered identity (docs/personalisation.md): a
    guided face gets the profile's references, never its adapter."""
    first, _ = people
    store = ProfileStore(tmp_path / "profiles")
    create_profile("First", photos=first[:6], store=store, detector="hog")
    ruined = tmp_path / "ruined.png"  # 7 % of its size and back: found, but too soft to identify
    rgb = read_image(first[7]).rgb
    small = cv2.resize(rgb, None, fx=0.07, fy=0.07, interpolation=cv2.INTER_AREA)
    write_image(ruined, cv2.resize(small, (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_CUBIC))
    named = RestoreOptions(detector="hog", upscale=1, profile="First")
    without_adapter = Restorer(profile_store=store).restore(RestoreRequest(ruined, None, named))
    _with_adapter(store, "First")
    with_adapter = Restorer(profile_store=store).restore(RestoreRequest(ruined, None, named))
    no_profile = Restorer(profile_store=store).restore(RestoreRequest(ruined, None, replace(named, profile=None)))
    assert [f.profile for f in with_adapter.faces if f.selected] == ["First"]
    assert np.array_equal(with_adapter.image, without_adapter.image)
    assert not np.array_equal(with_adapter.image, no_profile.image)  # the references did guide it


def test_an_adapter_for_another_model_is_not_used_and_says_so(people, tmp_path):
    first, _ = people
    store = ProfileStore(tmp_path / "profiles")
    create_profile("First", photos=first[:6], store=store, detector="hog")
    _with_adapter(store, "First", model="codeformer")
    restorer = Restorer(profile_store=store)
    plain = RestoreOptions(detector="hog", upscale=1)
    result = restorer.restore(RestoreRequest(first[7], None, replace(plain, profile="First")))
    assert any("adapter was trained for codeformer, not likeness-lite" in w for w in result.warnings)
    assert np.array_equal(result.image, restorer.restore(RestoreRequest(first[7], None, plain)).image)


def test_an_adapter_for_an_earlier_file_of_the_same_model_is_not_used_and_says_so(people, tmp_path):
    """A new likeness-lite (same name, other weights) must not take the old file's adapter."""
    first, _ = people
    store = ProfileStore(tmp_path / "profiles")
    create_profile("First", photos=first[:6], store=store, detector="hog")
    _with_adapter(store, "First", model_sha256="0" * 64)
    restorer = Restorer(profile_store=store)
    plain = RestoreOptions(detector="hog", upscale=1)
    result = restorer.restore(RestoreRequest(first[7], None, replace(plain, profile="First")))
    assert any("trained for another version of likeness-lite" in w for w in result.warnings)
    assert np.array_equal(result.image, restorer.restore(RestoreRequest(first[7], None, plain)).image)
