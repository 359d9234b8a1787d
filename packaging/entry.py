"""The bundle's one entry point, behind both executables (``packaging/likeness.spec``).

``likeness-cli`` is the command line (``engine.cli``); ``Likeness`` is the desktop app, which
also takes ``--self-test``. One entry, chosen by the executable's name, so the two share every
library in the folder.
"""

import multiprocessing
import sys
from pathlib import Path


def main() -> int:
    multiprocessing.freeze_support()  # helper processes re-enter here with their own arguments
    if Path(sys.executable).stem.lower().endswith("-cli"):
        from engine.cli import main as cli

        return cli()
    from app.__main__ import main as app

    return app()


if __name__ == "__main__":
    sys.exit(main())
