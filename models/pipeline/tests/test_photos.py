"""The real-photo split: fixed by file names alone, in thirds, photos only."""

import gzip
import io

import numpy as np
import pytest
from PIL import Image

from hallmark_models import photos


def test_split_is_thirds_fixed_by_name_and_independent_of_order():
    names = [f"photo{i:02d}.jpg" for i in range(30)]
    a = photos.assign(names)
    assert a == photos.assign(list(reversed(names)))
    assert sorted(list(a.values()).count(s) for s in photos.SPLITS) == [10, 10, 10]
    assert a["photo00.jpg"] == photos.assign(names)["photo00.jpg"]


def test_photos_skips_patterns_and_icons_and_reads_gzip(tmp_path):
    Image.new("RGB", (300, 200), "red").save(tmp_path / "a.jpg")
    Image.new("RGB", (300, 200), "red").save(tmp_path / "gradient.png")  # a drawn pattern
    Image.new("RGB", (64, 64), "red").save(tmp_path / "icon.png")  # too small
    buf = io.BytesIO()
    Image.new("L", (250, 190), 90).save(buf, "PNG")
    (tmp_path / "b.png.gz").write_bytes(gzip.compress(buf.getvalue()))
    (tmp_path / "notes.txt").write_text("x")
    got = sorted(p.name for s in photos.SPLITS for p in photos.photos(s, tmp_path))
    assert got == ["a.jpg", "b.png.gz"]
    assert photos.load(tmp_path / "b.png.gz").shape == (190, 250, 3)


def test_installed_photos_split_has_no_overlap():
    if not photos.ROOT.is_dir():
        pytest.skip("opencv-doc is not installed")
    sets = [set(p.name for p in photos.photos(s)) for s in photos.SPLITS]
    assert all(sets) and not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])
    assert "gradient.png" not in set().union(*sets)


def test_views_are_product_free_crops_turns_and_camera_effects_the_same_every_time(tmp_path):
    from PIL import Image

    root = tmp_path / "data"
    root.mkdir()
    rng = np.random.default_rng(0)
    for k in range(6):
        Image.fromarray(rng.integers(0, 256, (300 + 10 * k, 400, 3), dtype=np.uint8)).save(root / f"p{k}.jpg")
    split = "val"
    n = len(photos.photos(split, root))
    assert n >= 1
    a = photos.views(split, tmp_path / "a", per_photo=3, root=root)
    b = photos.views(split, tmp_path / "b", per_photo=3, root=root)
    assert len(a) == 3 * n and [p.name for p in a] == [p.name for p in b]
    shapes = set()
    for x, y in zip(a, b):
        ia, ib = np.asarray(Image.open(x)), np.asarray(Image.open(y))
        assert np.array_equal(ia, ib)  # seeded per photo: the same views every run
        assert 480 <= max(ia.shape[:2]) <= 1280
        shapes.add(ia.shape[:2])
    assert len(shapes) > 1  # crops and turns vary
