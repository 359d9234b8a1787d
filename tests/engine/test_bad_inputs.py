"""The bad-input corpus (``bad_inputs.py``): no crash, no traceback, a clear line, nothing lost.

For each of its 60-odd cases, through the CLI (and the image cases through ``engine.api``):
no traceback, no exit status of 128 or more, the expected status (0 restored, 1 failed, 2 usage),
a message naming the file and the cause, the originals unchanged, and no file left behind but
the outputs the case may make.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.engine.bad_inputs import make_corpus


def _digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in root.rglob("*")
        if p.is_file() and not p.is_symlink()
    }


@pytest.fixture(scope="module")
def corpus_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad-inputs")
    cases = make_corpus(root / "corpus")
    before = _digests(root / "corpus")
    cases_file, results, progress = root / "cases.json", root / "results.json", root / "progress.txt"
    cases_file.write_text(json.dumps([asdict(c) for c in cases], ensure_ascii=False))
    home = tmp_path_factory.mktemp("likeness-home")
    driver = [sys.executable, "-m", "tests.engine.bad_inputs", root / "corpus", cases_file, results, progress]
    env = {**os.environ, "LIKENESS_HOME": str(home)}
    proc = subprocess.run(driver, cwd=REPO, capture_output=True, text=True, timeout=900, env=env)
    last = progress.read_text() if progress.exists() else "(none)"
    assert proc.returncode == 0, f"the driver died (status {proc.returncode}) in case {last!r}:\n{proc.stderr[-3000:]}"
    return root / "corpus", cases, before, json.loads(results.read_text())


def test_the_corpus_is_large(corpus_run):
    _, cases, _, _ = corpus_run
    assert len(cases) >= 60


def test_no_crash_no_traceback_and_the_expected_status(corpus_run):
    _, _, _, results = corpus_run
    wrong = []
    for r in results:
        if r["crash"] or r["engine_error"] or "Traceback" in r["stderr"]:
            wrong.append(f"{r['name']}: traceback\n{r['crash'] or r['engine_error'] or r['stderr']}")
        elif r["got"] is None or r["got"] >= 128 or r["got"] not in r["rc"]:
            wrong.append(f"{r['name']}: status {r['got']}, expected {r['rc']}: {r['stderr'].strip()[:300]}")
    assert not wrong, "\n".join(wrong)


def test_each_failure_names_the_file_and_the_cause(corpus_run):
    _, _, _, results = corpus_run
    missing = [
        f"{r['name']}: {said!r} not in {r['stderr'].strip()[:300]!r}"
        for r in results
        for said in r["says"]
        if said not in r["stderr"]
    ]
    assert not missing, "\n".join(missing)


def test_originals_are_unchanged_and_nothing_is_left_behind(corpus_run):
    root, _, before, results = corpus_run
    after = _digests(root)
    allowed = {out for r in results for out in r["outputs"]}  # --overwrite may replace an earlier output
    changed = [name for name, digest in before.items() if after.get(name) != digest and name not in allowed]
    assert changed == []
    new = sorted(set(after) - set(before))
    assert [n for n in new if n not in allowed] == [], "unexpected files (leftovers or outputs where none belong)"
    assert not [p for p in root.rglob(".*")], "hidden temporaries left behind"


def test_every_case_that_succeeds_writes_its_outputs(corpus_run):
    root, _, _, results = corpus_run
    missing = [
        f"{r['name']}: {out}" for r in results if r["got"] == 0 for out in r["outputs"] if not (root / out).is_file()
    ]
    assert missing == []
