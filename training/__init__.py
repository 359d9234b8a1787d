"""Training and evaluation of Likeness's networks; builds on ``engine``, which never imports it.

Importing the package registers the evaluation judges (``training.judges``) with the engine's
identity registry; that imports neither torch nor any network.
"""

from . import judges as judges
