"""Albums: a folder of photos scanned once for faces, grouped into people the user confirms.

``types`` (no torch) holds the records; ``scan`` walks a folder and caches every face by the
photo's content; ``commands`` is ``likeness album``.
"""
