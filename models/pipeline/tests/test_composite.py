"""The independent composite set: labels that enclose the pasted packs, and the set's layout."""

import json

import numpy as np
import pytest
from PIL import Image

from hallmark_models import composite


def test_homography_maps_the_corners():
    src = np.array([[0, 0], [10, 0], [10, 20], [0, 20]], float)
    dst = np.array([[5, 5], [30, 8], [28, 40], [3, 35]], float)
    h = composite.homography(src, dst)
    for s, d in zip(src, dst):
        p = h @ [s[0], s[1], 1]
        assert np.allclose(p[:2] / p[2], d)


def test_pasted_pack_lies_inside_its_label_and_the_label_inside_the_frame():
    bg = Image.new("RGB", (640, 480), (0, 0, 0))
    art = Image.new("RGB", (100, 140), (255, 255, 255))
    for seed in range(10):
        rng = np.random.default_rng(seed)
        frame, packs, _turns = composite.compose(rng, bg, [art], 1)
        (cls, x1, y1, x2, y2), = packs
        assert cls == 0 and 0 <= x1 < x2 <= 640 and 0 <= y1 < y2 <= 480
        side = max(x2 - x1, y2 - y1)
        assert 0.15 * 640 * 0.8 <= side <= 640  # scaled 15-45% of the longer side (then turned, jittered)
        bright = np.argwhere(np.asarray(frame)[..., :].max(axis=2) > 60)
        ys, xs = bright[:, 0], bright[:, 1]
        assert xs.min() >= x1 - 3 and xs.max() <= x2 + 3 and ys.min() >= y1 - 3 and ys.max() <= y2 + 3


def test_quarter_turns_say_where_the_packs_top_edge_went():
    # A white card with a red top band: its band must lie on the side the recorded turns say
    # (0 up, 1 right, 2 down, 3 left: image y grows downwards).
    bg = Image.new("RGB", (640, 480), (0, 0, 0))
    art = np.full((140, 100, 3), 255, dtype=np.uint8)
    art[:25, :, 1:] = 0
    art = Image.fromarray(art)
    seen = set()
    for seed in range(80):
        frame, packs, turns = composite.compose(np.random.default_rng(seed), bg, [art], 1)
        (_, x1, y1, x2, y2), = packs
        (t,) = turns
        arr = np.asarray(frame).astype(int)
        red = np.argwhere((arr[..., 0] > arr[..., 1] + 50) & (arr[..., 0] > arr[..., 2] + 50))
        dy, dx = red.mean(0) - [(y1 + y2) / 2, (x1 + x2) / 2]
        side = {0: -dy, 1: dx, 2: dy, 3: -dx}[t]
        assert side > max(abs(dx), abs(dy)) * 0.7, (seed, t, dx, dy)
        seen.add(t)
    assert seen == {0, 1, 2, 3}


def test_write_lays_out_a_split_with_product_free_photos(tmp_path, monkeypatch):
    monkeypatch.setattr(composite, "class_names", lambda brand: ["earl-grey", "earl-grey-counterfeit"])
    bgs = []
    for k in range(2):
        p = tmp_path / f"bg{k}.jpg"
        Image.new("RGB", (400, 300), (30 * k, 90, 60)).save(p)
        bgs.append(p)
    rows = composite.write("northwind", tmp_path / "out", bgs, per_photo=3, seed=1)
    assert len(rows) == 2 * 4 and sum(r["framing"] == "photo" for r in rows) == 2
    index = [json.loads(l) for l in (tmp_path / "out" / "test.jsonl").read_text().splitlines()]
    assert index == rows
    for r in rows:
        lines = (tmp_path / "out" / "labels" / "test" / r["image"].replace(".jpg", ".txt")).read_text().splitlines()
        assert [int(l.split()[0]) for l in lines] == r["items"]
        assert r["framing"] == "photo" or len(r["quarter_turns"]) == len(r["items"])
        assert (tmp_path / "out" / "images" / "test" / r["image"]).exists()
    again = composite.write("northwind", tmp_path / "again", bgs, per_photo=3, seed=1)
    assert again == rows  # deterministic


def test_a_validation_split_sits_beside_the_test_split_and_is_read_as_one(tmp_path, monkeypatch):
    # The validation composite (for choosing between candidate models) shares the folder with the test
    # one; the release's split reader finds each by name.
    from hallmark_models import evaluation

    monkeypatch.setattr(composite, "class_names", lambda brand: ["earl-grey", "earl-grey-counterfeit"])
    bg = tmp_path / "bg.jpg"
    Image.new("RGB", (400, 300), (10, 90, 60)).save(bg)
    test = composite.write("northwind", tmp_path / "c", [bg], per_photo=2, seed=1)
    val = composite.write("northwind", tmp_path / "c", [bg], per_photo=3, seed=2, split="val")
    assert (tmp_path / "c" / "test.jsonl").exists() and (tmp_path / "c" / "val.jsonl").exists()
    got = {s: evaluation.split_entries(tmp_path / "c", s) for s in ("test", "val")}
    assert [e[0] for e in got["test"]] == [r["image"] for r in test]
    assert [e[0] for e in got["val"]] == [r["image"] for r in val]
    assert all(e[2].exists() and e[2].parent.name == "val" for e in got["val"])


def test_a_larger_set_only_adds_scenes_to_a_smaller_one(tmp_path, monkeypatch):
    # The validation set grew from 6 to 18 composites per photo; the 6 it had must stay byte for byte,
    # or figures recorded on the old set would no longer describe any set.
    monkeypatch.setattr(composite, "class_names", lambda brand: ["earl-grey", "earl-grey-counterfeit"])
    bg = tmp_path / "bg.jpg"
    Image.new("RGB", (400, 300), (40, 90, 60)).save(bg)
    small = composite.write("northwind", tmp_path / "small", [bg], per_photo=2, seed=3, split="val")
    large = composite.write("northwind", tmp_path / "large", [bg], per_photo=5, seed=3, split="val")
    assert large[:len(small)] == small and len(large) == len(small) + 3
    for r in small:
        a = (tmp_path / "small" / "images" / "val" / r["image"]).read_bytes()
        assert a == (tmp_path / "large" / "images" / "val" / r["image"]).read_bytes()


def test_more_draws_keep_the_first_draw_and_add_independent_ones(tmp_path, monkeypatch):
    # The test set grew from one draw to five: the first must stay byte for byte (figures recorded on the
    # one-draw set still describe a part of it), the product-free photo is not repeated, and a later
    # draw is its own random stream, not a continuation that a per-photo count change would shift.
    monkeypatch.setattr(composite, "class_names", lambda brand: ["earl-grey", "earl-grey-counterfeit"])
    bg = tmp_path / "bg.jpg"
    Image.new("RGB", (400, 300), (50, 90, 60)).save(bg)
    one = composite.write("northwind", tmp_path / "one", [bg], per_photo=2, seed=4)
    three = composite.write("northwind", tmp_path / "three", [bg], per_photo=2, seed=4, draws=3)
    assert three[:len(one)] == one and len(three) == len(one) + 2 * 2
    assert sum(r["framing"] == "photo" for r in three) == 1
    assert len({r["image"] for r in three}) == len(three)
    for r in one:
        assert ((tmp_path / "one" / "images" / "test" / r["image"]).read_bytes()
                == (tmp_path / "three" / "images" / "test" / r["image"]).read_bytes())
    wider = composite.write("northwind", tmp_path / "wider", [bg], per_photo=3, seed=4, draws=3)
    d1 = [r for r in three if "-d1-" in r["image"]]
    assert d1 == [r for r in wider if "-d1-" in r["image"]][:2]  # draw 1 starts its own stream
    images = lambda d, rows: [(d / "images" / "test" / r["image"]).read_bytes() for r in rows]
    assert images(tmp_path / "three", d1) != images(tmp_path / "three", one[1:3])


def test_harsh_lighting_changes_the_light_and_nothing_else(tmp_path, monkeypatch):
    # The stress set draws the same layouts (same packs, same boxes, same turns) under harsher light, so
    # the two sets differ only in what the light does; the normal preset is the default's, byte for byte.
    monkeypatch.setattr(composite, "class_names", lambda brand: ["earl-grey", "earl-grey-counterfeit"])
    bg = tmp_path / "bg.jpg"
    Image.new("RGB", (400, 300), (60, 90, 60)).save(bg)
    default = composite.write("northwind", tmp_path / "d", [bg], per_photo=3, seed=5)
    normal = composite.write("northwind", tmp_path / "n", [bg], per_photo=3, seed=5, light=composite.LIGHTING["normal"])
    harsh = composite.write("northwind", tmp_path / "h", [bg], per_photo=3, seed=5, light=composite.LIGHTING["harsh"])
    assert default == normal == harsh
    images = lambda d: [(d / "images" / "test" / r["image"]).read_bytes() for r in default]
    labels = lambda d: [(d / "labels" / "test" / r["image"].replace(".jpg", ".txt")).read_text() for r in default]
    assert images(tmp_path / "d") == images(tmp_path / "n")
    assert labels(tmp_path / "h") == labels(tmp_path / "d")
    assert all(a != b for a, b in zip(images(tmp_path / "h"), images(tmp_path / "d")))


def _pattern_backgrounds(root, n=2):
    root.mkdir(parents=True, exist_ok=True)
    out = []
    for k in range(n):
        p = root / f"bg{k}.png"
        Image.fromarray((np.indices((300, 400)).sum(0)[..., None] * [1, 2, 3] % 251).astype(np.uint8)).save(p)
        out.append(p)
    return out


def test_the_default_set_is_what_it_was_before_full_rotation_existed(tmp_path, monkeypatch):
    # Figures recorded on the five-draw set must still describe it: the layouts (rows and labels) of a
    # small default set, digested by the code before `--rotation` was added (the JPEG bytes matched too).
    import hashlib

    monkeypatch.setattr(composite, "class_names", lambda brand: ["earl-grey", "earl-grey-counterfeit"])
    bgs = _pattern_backgrounds(tmp_path / "bg")
    rows = composite.write("northwind", tmp_path / "set", bgs, per_photo=3, seed=7, draws=2)
    h = hashlib.sha256()
    for r in rows:
        h.update(json.dumps(r).encode())
        h.update((tmp_path / "set" / "labels" / "test" / r["image"].replace(".jpg", ".txt")).read_bytes())
    assert h.hexdigest() == "0be5163955ba89b6eb423d8935930533579efe2d00a38dd7bb134c2a30c237e5"
    again = composite.write("northwind", tmp_path / "quarter", bgs, per_photo=3, seed=7, draws=2, rotation="quarter")
    assert again == rows and all("angles" not in r for r in rows)
    for r in rows:
        assert ((tmp_path / "set" / "images" / "test" / r["image"]).read_bytes()
                == (tmp_path / "quarter" / "images" / "test" / r["image"]).read_bytes())


def test_full_rotation_turns_packs_over_the_whole_circle_and_says_where_each_top_edge_went():
    # A white card with a red top band: the band must point where the recorded angle says (clockwise on
    # screen from up: 90 = right), and the angles must cover the circle, not cluster at quarter turns.
    bg = Image.new("RGB", (640, 480), (0, 0, 0))
    art = np.full((140, 100, 3), 255, dtype=np.uint8)
    art[:25, :, 1:] = 0
    art = Image.fromarray(art)
    angles_seen = []
    for seed in range(120):
        angles = []
        frame, packs, turns = composite.compose(np.random.default_rng(seed), bg, [art], 1, rotation="full",
                                                angles=angles)
        (_, x1, y1, x2, y2), = packs
        (t,), (a,) = turns, angles
        assert 0 <= a < 360 and t == int(round(a / 90)) % 4
        arr = np.asarray(frame).astype(int)
        red = np.argwhere((arr[..., 0] > arr[..., 1] + 50) & (arr[..., 0] > arr[..., 2] + 50))
        dy, dx = red.mean(0) - [(y1 + y2) / 2, (x1 + x2) / 2]
        want = np.array([np.sin(np.radians(a)), -np.cos(np.radians(a))])  # (dx, dy) of the top edge
        cos = (want @ [dx, dy]) / np.hypot(dx, dy)
        assert cos > 0.9, (seed, a, dx, dy)  # within about 25 degrees (perspective jitter moves the band)
        # the label holds the pack
        bright = np.argwhere(arr.max(axis=2) > 60)
        assert bright[:, 1].min() >= x1 - 3 and bright[:, 1].max() <= x2 + 3
        assert bright[:, 0].min() >= y1 - 3 and bright[:, 0].max() <= y2 + 3
        angles_seen.append(a)
    counts = np.histogram(angles_seen, bins=8, range=(0, 360))[0]
    assert counts.min() >= 6, counts  # 120 draws over 8 octants: every octant well filled
    off_quarter = [a for a in angles_seen if 20 < (a % 90) < 70]
    assert len(off_quarter) > 40  # diagonal packs, which the quarter-turn set never has


def test_a_full_rotation_set_records_angles_and_keeps_the_product_free_photos(tmp_path, monkeypatch):
    monkeypatch.setattr(composite, "class_names", lambda brand: ["earl-grey", "earl-grey-counterfeit"])
    bgs = _pattern_backgrounds(tmp_path / "bg")
    default = composite.write("northwind", tmp_path / "d", bgs, per_photo=3, seed=7, draws=2)
    full = composite.write("northwind", tmp_path / "f", bgs, per_photo=3, seed=7, draws=2, rotation="full")
    assert [r["image"] for r in full] == [r["image"] for r in default]
    for r in full:
        if r["framing"] == "photo":  # the photo alone: the same product-free frame as the default set's
            assert ((tmp_path / "f" / "images" / "test" / r["image"]).read_bytes()
                    == (tmp_path / "d" / "images" / "test" / r["image"]).read_bytes())
        else:
            assert len(r["angles"]) == len(r["items"]) == len(r["quarter_turns"])
            assert r["quarter_turns"] == [int(round(a / 90)) % 4 for a in r["angles"]]
    assert composite.write("northwind", tmp_path / "f2", bgs, per_photo=3, seed=7, draws=2, rotation="full") == full
    with pytest.raises(ValueError, match="rotation"):
        composite.pack_quad(np.random.default_rng(0), (10, 10), (100, 100), rotation="half")
