"""The split by content (deterministic, near-duplicates together, a previous revision's photos kept) and
the copy-paste synthesiser."""

import json

import numpy as np
from PIL import Image, ImageDraw

from hallmark_models import split, synth


def scene(rng, k: int, j: int) -> Image.Image:
    """Shoot k, frame j: one random scene per shoot, a small pack nudged from frame to frame."""
    base = np.random.default_rng(1000 + k).integers(0, 255, (12, 16, 3), dtype=np.uint8)
    im = Image.fromarray(base).resize((320, 240), Image.Resampling.BILINEAR)
    d = ImageDraw.Draw(im)
    x = 100 + 6 * j
    d.rectangle([x, 80, x + 60, 150], fill=(200, 40, 30))
    return im


def shoots(tmp_path, n_shoots=15, frames=3):
    rng = np.random.default_rng(0)
    paths, shoot_of = [], []
    for k in range(n_shoots):
        for j in range(frames):
            p = tmp_path / f"s{k}-{j}.png"
            scene(rng, k, j).save(p)
            paths.append(p)
            shoot_of.append(k)
    return paths, shoot_of


def test_frames_of_one_shoot_group_together_and_shoots_stay_apart(tmp_path):
    paths, shoot_of = shoots(tmp_path)
    g = split.groups([split.thumbnail(p) for p in paths])
    for k in set(shoot_of):
        assert len({g[i] for i, s in enumerate(shoot_of) if s == k}) == 1
    assert len(set(g)) == len(set(shoot_of))


def test_the_split_depends_on_content_only_and_never_cuts_a_shoot(tmp_path):
    paths, shoot_of = shoots(tmp_path)
    shas = [split.hashlib.sha256(p.read_bytes()).hexdigest() for p in paths]
    classes = [["a"] if s % 2 else ["b"] for s in shoot_of]
    thumbs = [split.thumbnail(p) for p in paths]
    a = split.assign(shas, classes, thumbs)
    order = list(reversed(range(len(paths))))  # another order, the same photos
    b = split.assign([shas[i] for i in order], [classes[i] for i in order], [thumbs[i] for i in order])
    assert [b[order.index(i)] for i in range(len(paths))] == a
    for k in set(shoot_of):
        assert len({a[i] for i, s in enumerate(shoot_of) if s == k}) == 1
    assert {"train", "val", "test"} <= set(a)
    for cls in ("a", "b"):  # stratified: each class has photos in val and test
        assert {a[i] for i in range(len(a)) if classes[i] == [cls]} == {"train", "val", "test"}


def test_a_next_revision_keeps_old_photos_where_they_were(tmp_path):
    paths, shoot_of = shoots(tmp_path, n_shoots=12)
    shas = [split.hashlib.sha256(p.read_bytes()).hexdigest() for p in paths]
    classes = [["a"]] * len(paths)
    thumbs = [split.thumbnail(p) for p in paths]
    first = split.assign(shas[:24], classes[:24], thumbs[:24])
    keep = dict(zip(shas[:24], first))
    second = split.assign(shas, classes, thumbs, keep)
    assert second[:24] == first


def test_synthesised_frames_are_deterministic_and_their_boxes_hold_the_pasted_packs(tmp_path):
    pack = Image.new("RGB", (60, 40), (250, 0, 0))
    sources = [synth.Source(0, pack), synth.Source(1, Image.new("RGB", (40, 60), (0, 0, 250)), reference=True)]
    bank = [np.full((300, 400, 3), 128, np.uint8)]
    rows = synth.write(tmp_path / "a", "train", sources, bank, 12, seed=3)
    synth.write(tmp_path / "b", "train", sources, bank, 12, seed=3)
    for r in rows:
        assert (tmp_path / "a/images/train" / r["image"]).read_bytes() == (tmp_path / "b/images/train" / r["image"]).read_bytes()
    packs = 0
    for r in rows:
        im = np.asarray(Image.open(tmp_path / "a/images/train" / r["image"]).convert("RGB"), np.float32)
        H, W = im.shape[:2]
        lines = (tmp_path / "a/labels/train" / r["image"].replace(".jpg", ".txt")).read_text().split("\n")
        for line in filter(None, lines):
            c, cx, cy, w, h = map(float, line.split())
            x1, y1, x2, y2 = int((cx - w / 2) * W), int((cy - h / 2) * H), int((cx + w / 2) * W), int((cy + h / 2) * H)
            inside = im[max(0, y1):y2, max(0, x1):x2]
            ch = 0 if c == 0 else 2
            # the pack's colour dominates somewhere inside its box, and the box is not the whole frame
            assert (inside[..., ch] - inside.mean(-1)).max() > 40, (r, line)
            assert (x2 - x1) * (y2 - y1) < 0.9 * W * H
            packs += 1
    assert packs >= 8
    assert any(not r["items"] for r in synth.write(tmp_path / "c", "train", sources, bank, 40, seed=1)), \
        "some frames are product-free"
    assert len((tmp_path / "a" / "train.jsonl").read_text().splitlines()) == 12
    assert json.loads((tmp_path / "a" / "train.jsonl").read_text().splitlines()[0])["framing"] == "synth"
