"""The upload's photos split by their content into train / val / test, deterministically: the same upload
gives the same split on any machine, whatever the files are called or the order they come in.

1. Near-duplicates are grouped (`groups`): frames of one shoot (the same camera and scene, the pack
   nudged, the light changed) must not land on both sides of a split, or the test would grade the model
   on photos it has all but seen. Two photos are near-duplicates when their 16x16 grey thumbnails, each
   normalised to mean 0 and deviation 1, differ by less than `NEAR` at the median cell: the median
   ignores what a pack changes on part of the frame, and reacts to another scene or framing.
2. Each group gets a key (`group_key`: the smallest SHA-256 of its files) and a place in [0, 1) from
   it; groups are stratified by their main class (`dominant`: the class with most boxes, or
   "product-free") and, within a class, ordered by that place: the first `TEST` share goes to test, the
   next `VAL` share to val, the rest to train (at least one group each for test and val when a class has
   three or more).
3. `keep`: photos whose split is already known (the previous revision's `split.json`) stay where they
   were; only new photos are split, among themselves, so a next revision never tests on what the last
   one trained on.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import numpy as np

SPLITS = ("train", "val", "test")
TEST, VAL = 0.2, 0.2
NEAR = 0.35  # median |difference| of normalised thumbnails below which two photos are one shoot
THUMB = 16


def thumbnail(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        g = np.asarray(im.convert("L").resize((THUMB, THUMB), Image.Resampling.BOX), dtype=np.float32)
    return (g - g.mean()) / (g.std() + 1e-6)


def distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.median(np.abs(a - b)))


def groups(thumbs: list[np.ndarray], near: float = NEAR) -> list[int]:
    """Group index per photo: near-duplicates (and their near-duplicates, transitively) share one."""
    n = len(thumbs)
    parent = list(range(n))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    if n:
        t = np.stack([x.reshape(-1) for x in thumbs])
        for i in range(n):
            d = np.median(np.abs(t[i + 1:] - t[i]), axis=1)
            for j in np.nonzero(d < near)[0]:
                a, b = find(i), find(i + 1 + int(j))
                if a != b:
                    parent[max(a, b)] = min(a, b)
    roots = [find(i) for i in range(n)]
    order = {r: k for k, r in enumerate(dict.fromkeys(roots))}
    return [order[r] for r in roots]


def group_key(shas: list[str]) -> str:
    return min(shas)


def place(key: str) -> float:
    """A group's place in [0, 1), from its key alone."""
    return int(hashlib.sha256(("hallmark-split:" + key).encode()).hexdigest()[:12], 16) / 16 ** 12


def dominant(classes: list[list[str]]) -> str:
    """A group's main class: the most boxes (ties: the name first in order), or "product-free"."""
    c = Counter(x for cs in classes for x in cs)
    return min(c, key=lambda k: (-c[k], k)) if c else "product-free"


def assign(shas: list[str], classes: list[list[str]], thumbs: list[np.ndarray],
           keep: dict[str, str] | None = None, near: float = NEAR) -> list[str]:
    """The split of each photo (`shas`: their SHA-256; `classes`: the classes of their boxes, [] for a
    product-free one). `keep`: SHA-256 -> split of photos split before, which stay."""
    keep = keep or {}
    g = groups(thumbs, near)
    out = [keep.get(s, "") for s in shas]
    members: dict[int, list[int]] = {}
    for i, k in enumerate(g):
        members.setdefault(k, []).append(i)
    # A group with a photo split before goes where that photo is: a new frame of an old shoot joins it.
    fresh = []
    for k, idx in members.items():
        old = [out[i] for i in idx if out[i]]
        if old:
            for i in idx:
                out[i] = out[i] or Counter(old).most_common(1)[0][0]
        else:
            fresh.append(k)
    by_class: dict[str, list[tuple[float, int]]] = {}
    for k in fresh:
        idx = members[k]
        key = group_key([shas[i] for i in idx])
        by_class.setdefault(dominant([classes[i] for i in idx]), []).append((place(key), k))
    for _cls, gs in by_class.items():
        gs.sort()
        n = len(gs)
        n_test = max(1, round(TEST * n)) if n >= 3 else 0
        n_val = max(1, round(VAL * n)) if n >= 3 else 0
        for rank, (_, k) in enumerate(gs):
            split = "test" if rank < n_test else "val" if rank < n_test + n_val else "train"
            for i in members[k]:
                out[i] = split
    return out
