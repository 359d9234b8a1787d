"""Faces grouped into people: conservative average linkage over identity cosines.

Merging two people (siblings, look-alikes) is worse for a user than splitting one person into two
groups they can merge with one click, so the cut is set for pairwise precision first.

How the threshold was measured (``python -m training.album_calibration``): dlib's
mirror-averaged 128-D vectors of the 2240 FFHQ-aligned faces of the 195 *training* identities
(all but ``test_identities.txt``) in ``/work/cache/faces256``; 30 albums of 30 identities drawn at
random (every face of each, ~340 faces an album); average linkage cut at each cosine on a grid of
0.005; pairwise precision and recall of each album against the identity labels. ``THRESHOLD`` is
the lowest cut (most recall) whose mean precision is at least 0.99, a margin over the 0.98 asked
for: 0.93 (mean precision 0.993, recall 0.86; the worst album 0.92, from two look-alike
identities). Centring the vectors on the calibration's mean face, complete and weighted linkage,
and ejecting faces far from their group's mean after the cut all did worse at equal precision.
On held-out identities, a real ``scan_album`` (HOG) of an album of all 612 photos of the 55
held-out identities plus two other files, pairwise precision is 0.995 and recall 0.90 (90 people,
62 with two faces or more; 3 hold two identities), from the same script's report.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage

#: Average cosine of dlib vectors above which two groups are one person (dlib's own 1 % false
#: accept threshold for single pairs is 0.9115: groups are cut more strictly).
THRESHOLD = 0.93


def unit_rows(embeddings: np.ndarray) -> np.ndarray:
    x = np.asarray(embeddings, np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def cluster_faces(
    embeddings: np.ndarray,
    *,
    threshold: float = THRESHOLD,
    fixed: Sequence[Sequence[int]] = (),
) -> list[list[int]]:
    """Groups of row indices, one per person; every row in exactly one group.

    ``fixed``: groups the user confirmed (named, merged, split). They are kept as they are and
    never merged with each other; a group of the other faces joins the fixed group it matches
    best when their average cosine reaches ``threshold``. Groups come out largest first, ties by
    their smallest row, so the order is reproducible.
    """
    n = len(embeddings)
    if n == 0:
        return []
    x = unit_rows(embeddings)
    pinned = {i for group in fixed for i in group}
    free = [i for i in range(n) if i not in pinned]
    groups = [list(g) for g in fixed if len(g)]
    loose = _average_linkage(x[free], threshold) if free else []
    for members in loose:
        rows = [free[i] for i in members]
        best, best_sim = -1, threshold
        for k, group in enumerate(groups[: len(fixed)]):
            sim = float((x[rows] @ x[group].T).mean())
            if sim >= best_sim:
                best, best_sim = k, sim
        if best >= 0:
            groups[best] = groups[best] + rows
        else:
            groups.append(rows)
    groups = [sorted(g) for g in groups]
    return sorted(groups, key=lambda g: (-len(g), g[0]))


def _average_linkage(x: np.ndarray, threshold: float) -> list[list[int]]:
    """Average-linkage groups of unit rows whose mean cosine is at least ``threshold``."""
    if len(x) == 1:
        return [[0]]
    sims = np.clip(x @ x.T, -1.0, 1.0)
    distance = 1.0 - sims[np.triu_indices(len(x), 1)]
    labels = fcluster(linkage(np.maximum(distance, 0.0), method="average"), t=1.0 - threshold, criterion="distance")
    out: dict[int, list[int]] = {}
    for i, label in enumerate(labels):
        out.setdefault(int(label), []).append(i)
    return list(out.values())


def pairwise_scores(groups: Sequence[Sequence[int]], labels: Sequence[str | None]) -> tuple[float, float]:
    """(precision, recall) over pairs of faces: same group vs same label. ``None`` labels are ignored."""
    found = {i: g for g, members in enumerate(groups) for i in members}
    true_pairs = predicted = correct = 0
    rows = [i for i, label in enumerate(labels) if label is not None and i in found]
    by_label: dict[str, list[int]] = {}
    for i in rows:
        by_label.setdefault(str(labels[i]), []).append(i)
    for members in by_label.values():
        true_pairs += len(members) * (len(members) - 1) // 2
        counts: dict[int, int] = {}
        for i in members:
            counts[found[i]] = counts.get(found[i], 0) + 1
        correct += sum(c * (c - 1) // 2 for c in counts.values())
    group_counts: dict[int, int] = {}
    for i in rows:
        group_counts[found[i]] = group_counts.get(found[i], 0) + 1
    predicted = sum(c * (c - 1) // 2 for c in group_counts.values())
    precision = correct / predicted if predicted else 1.0
    recall = correct / true_pairs if true_pairs else 1.0
    return precision, recall
