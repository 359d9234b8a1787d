"""Person profiles: a person's best reference faces and, once trained, an adapter for them.

``store`` (no torch) keeps them under the user data folder; ``build`` makes one from photos or
an album person; ``match`` tells which profile a face in a photo belongs to.
"""
