"""Album scan speed and rescan time: ``python benchmarks/album.py [--photos 500]``.

Copies the first N photos of ``../shared/data/faces`` (real photos, one or a few faces each) into
a temporary album and scans it with the HOG detector in this process (the identity network is
loaded first, so the rate is the steady one): photos/s. Then times, on the unchanged album, a
rescan in this process and the whole ``likeness album scan`` command in a child process (Python
start and imports included; the target is ≤ 10 s for 500 photos), and a rescan after every file
was touched (new mtimes: every file is hashed, none is processed).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FACES = REPO.parent / "shared" / "data" / "faces" / "identities"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--photos", type=int, default=500)
    parser.add_argument("--detector", default="hog")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from engine.album.scan import scan_album
    from engine.identity import make_embedder

    photos = sorted(FACES.glob("*/*.jpg"))[: args.photos]
    with tempfile.TemporaryDirectory() as tmp:
        album, home = Path(tmp) / "album", Path(tmp) / "home"
        album.mkdir()
        for photo in photos:
            shutil.copyfile(photo, album / f"{photo.parent.name}_{photo.name}")
        os.environ["LIKENESS_HOME"] = str(home)
        start = time.perf_counter()
        make_embedder()
        load = time.perf_counter() - start
        first = scan_album(album, detector=args.detector)
        again = scan_album(album, detector=args.detector)
        start = time.perf_counter()
        cmd = [sys.executable, "-m", "engine.cli", "album", "scan", str(album), "-q"]
        subprocess.run(cmd, cwd=REPO, check=True, stdout=subprocess.DEVNULL, env=os.environ)
        cli_seconds = time.perf_counter() - start
        for copy in album.iterdir():
            os.utime(copy)  # new mtime, same bytes
        touched = scan_album(album, detector=args.detector)
    print(f"album of {first.photos} photos, {first.faces} faces, {first.people} people ({args.detector})")
    print(f"  identity network load: {load:.1f} s")
    print(f"  first scan: {first.seconds:.1f} s, {first.processed / first.seconds:.2f} photos/s")
    print(f"  unchanged rescan: {again.seconds:.3f} s in-process, {cli_seconds:.1f} s as `likeness album scan`")
    print(f"  rescan with every mtime changed: {touched.seconds:.2f} s (processed {touched.processed})")
    print(f"  CPU cores: {os.cpu_count()}, load average now {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
