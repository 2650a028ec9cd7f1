"""Smoke test of the data generator: a handful of scenes per brand, labels that describe them, and
barcodes on the artwork that real decoders read (or, for counterfeits, read as wrong)."""

import json

import numpy as np
import pytest
import zxingcpp
from PIL import Image

from hallmark_models import artwork, brands, gs1, scenes
from hallmark_models.generate import write_data_yaml, write_reference, write_split


@pytest.mark.parametrize("brand_key", sorted(brands.BRANDS))
def test_scenes_have_labels_inside_the_image(tmp_path, brand_key):
    brand = brands.BRANDS[brand_key]
    index = write_split(brand, tmp_path, "train", 8, seed=7)
    write_data_yaml(brand, tmp_path)
    n_classes = len(brand.classes())
    total = 0
    for row in index:
        img = Image.open(tmp_path / "images" / "train" / row["image"])
        assert img.size == (960, 720)
        lines = (tmp_path / "labels" / "train" / row["image"].replace(".jpg", ".txt")).read_text().splitlines()
        assert len(lines) == len(row["items"])
        for line in lines:
            c, cx, cy, w, h = line.split()
            assert 0 <= int(c) < n_classes
            cx, cy, w, h = map(float, (cx, cy, w, h))
            assert 0 < w <= 1 and 0 < h <= 1
            assert 0 <= cx - w / 2 + 1e-6 and cx + w / 2 <= 1 + 1e-6
            assert 0 <= cy - h / 2 + 1e-6 and cy + h / 2 <= 1 + 1e-6
            total += 1
    assert total > 0
    assert "nc: 6" in (tmp_path / "data.yaml").read_text()


def test_splits_draw_different_scenes(tmp_path):
    brand = brands.NORTHWIND
    write_split(brand, tmp_path, "train", 2, seed=7)
    write_split(brand, tmp_path, "test", 2, seed=7)
    a = (tmp_path / "images" / "train" / "northwind-train-0000.jpg").read_bytes()
    b = (tmp_path / "images" / "test" / "northwind-test-0000.jpg").read_bytes()
    assert a != b


def test_same_seed_same_scene(tmp_path):
    write_split(brands.AURORA, tmp_path / "a", "val", 1, seed=3)
    write_split(brands.AURORA, tmp_path / "b", "val", 1, seed=3)
    assert (tmp_path / "a/images/val/aurora-val-0000.jpg").read_bytes() == \
        (tmp_path / "b/images/val/aurora-val-0000.jpg").read_bytes()


def _codes(img: Image.Image):
    return zxingcpp.read_barcodes(np.asarray(img.convert("L")))


@pytest.mark.parametrize("brand_key", sorted(brands.BRANDS))
def test_artwork_barcodes(brand_key):
    brand = brands.BRANDS[brand_key]
    for cls, (product, role) in zip(brand.classes(), brands.class_table(brand)):
        found = _codes(artwork.render(brand, product, role, serial=42))
        eans = [b.text for b in found if b.format == zxingcpp.BarcodeFormat.EAN13]
        dms = [b for b in found if b.format == zxingcpp.BarcodeFormat.DataMatrix]
        printed = artwork.barcode_digits(brand, product, role)
        if role == "genuine":
            assert eans == [brand.gtin(product)], cls["name"]
            assert eans[0].startswith(brand.gs1_prefix)
        elif gs1.is_valid(printed):
            # A counterfeit's readable barcode never names its own product under the brand's prefix.
            assert eans == [printed] and printed != brand.gtin(product), cls["name"]
        else:
            assert eans == [], f"{cls['name']}: a wrong check digit must not decode"
        if brand.style == "pharma":
            assert len(dms) == 1 and dms[0].content_type == zxingcpp.ContentType.GS1, cls["name"]
            assert "(21)SN" in dms[0].text and dms[0].text.startswith("(01)")


def test_every_counterfeit_differs_from_its_genuine_pack():
    for brand in brands.BRANDS.values():
        for product in brand.products:
            g = np.asarray(artwork.render(brand, product, "genuine", 1), dtype=np.int16)
            f = np.asarray(artwork.render(brand, product, "counterfeit", 1), dtype=np.int16)
            assert g.shape == f.shape
            # Real, visible flaws: a good share of the pack changes, not a few pixels.
            assert (np.abs(g - f).max(axis=2) > 40).mean() > 0.01, product.key


def test_kiosk_closeup_barcode_reads_in_a_scene():
    rng = np.random.default_rng(11)
    arts = scenes.ArtCache(brands.NORTHWIND)
    read = 0
    for _ in range(6):
        s = scenes.compose(rng, arts, "kiosk", size=(1600, 1200))
        read += any(b.format == zxingcpp.BarcodeFormat.EAN13 for b in _codes(s.image))
    assert read >= 1


def test_reference_artwork_written_per_class(tmp_path):
    write_reference(brands.AURORA, tmp_path)
    names = sorted(p.stem for p in tmp_path.glob("*.png"))
    assert names == sorted(c["name"] for c in brands.AURORA.classes())


def test_quarter_turned_copies_keep_each_label_on_its_pack(tmp_path):
    """A red square on grey, labelled; each turned copy's label must still frame the red pixels."""
    from hallmark_models.generate import add_quarter_turns

    (tmp_path / "images" / "train").mkdir(parents=True)
    (tmp_path / "labels" / "train").mkdir(parents=True)
    rows = []
    for k in range(3):  # three conveyor scenes: turned by one, two and three quarters
        arr = np.full((60, 80, 3), 128, dtype=np.uint8)
        arr[10:20, 50:70] = (255, 0, 0)  # x 50..70, y 10..20 of an 80 x 60 image
        Image.fromarray(arr).save(tmp_path / "images" / "train" / f"s{k}.jpg", quality=100)
        (tmp_path / "labels" / "train" / f"s{k}.txt").write_text(f"3 {60 / 80} {15 / 60} {20 / 80} {10 / 60}\n")
        rows.append({"image": f"s{k}.jpg", "framing": "conveyor", "items": [3]})
    rows.append({"image": "kiosk.jpg", "framing": "kiosk", "items": []})  # not a conveyor: not turned
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))

    assert add_quarter_turns(tmp_path) == 3
    index = [json.loads(line) for line in (tmp_path / "train.jsonl").read_text().splitlines()]
    assert [r["image"] for r in index[4:]] == ["s0-turn1.jpg", "s1-turn2.jpg", "s2-turn3.jpg"]
    for r in index[4:]:
        img = np.asarray(Image.open(tmp_path / "images" / "train" / r["image"]).convert("RGB")).astype(int)
        h, w = img.shape[:2]
        ys, xs = np.nonzero((img[..., 0] > 200) & (img[..., 1] < 80))
        c, cx, cy, bw, bh = (tmp_path / "labels" / "train" / r["image"].replace(".jpg", ".txt")).read_text().split()
        cx, cy, bw, bh = float(cx) * w, float(cy) * h, float(bw) * w, float(bh) * h
        assert c == "3"
        # within 2 px: JPEG blurs the square's edge by a pixel
        assert abs((xs.min() + xs.max() + 1) / 2 - cx) <= 2 and abs((ys.min() + ys.max() + 1) / 2 - cy) <= 2, r
        assert abs(xs.max() + 1 - xs.min() - bw) <= 2 and abs(ys.max() + 1 - ys.min() - bh) <= 2, r


def test_quarter_turns_of_chosen_framings_count_turns_within_each_framing(tmp_path):
    from hallmark_models.generate import add_quarter_turns

    (tmp_path / "images" / "train").mkdir(parents=True)
    (tmp_path / "labels" / "train").mkdir(parents=True)
    framings = ["kiosk", "conveyor", "kiosk", "empty", "kiosk"]
    for k, f in enumerate(framings):
        Image.new("RGB", (40, 30), (90, 90, 90)).save(tmp_path / "images" / "train" / f"s{k}.jpg")
        (tmp_path / "labels" / "train" / f"s{k}.txt").write_text("" if f == "empty" else "0 0.5 0.5 0.2 0.2\n")
    rows = [{"image": f"s{k}.jpg", "framing": f, "items": [] if f == "empty" else [0]} for k, f in enumerate(framings)]
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))

    assert add_quarter_turns(tmp_path, framings=("conveyor", "kiosk")) == 4
    added = [json.loads(line) for line in (tmp_path / "train.jsonl").read_text().splitlines()][5:]
    assert [(r["image"], r["framing"]) for r in added] == [
        ("s0-turn1.jpg", "kiosk"), ("s1-turn1.jpg", "conveyor"), ("s2-turn2.jpg", "kiosk"), ("s4-turn3.jpg", "kiosk")]
    turned = Image.open(tmp_path / "images" / "train" / "s0-turn1.jpg")
    assert turned.size == (30, 40)


def test_an_unknown_turn_framing_is_refused_before_anything_is_written(tmp_path):
    from hallmark_models.generate import main

    with pytest.raises(SystemExit, match="no framing"):
        main(["--brand", "aurora", "--out", str(tmp_path / "d"), "--train", "1", "--val", "0", "--test", "0",
              "--quarter-turns", "--turn-framings", "kiosk,belt"])
    assert not (tmp_path / "d").exists()


def test_default_scenes_are_unchanged_by_the_world_options(tmp_path):
    # The opt-in World must not move the default random stream: the shipped samples (held-out test
    # scenes) are drawn again byte for byte, so test figures stay comparable across revisions.
    from pathlib import Path

    samples = Path(__file__).resolve().parents[2] / "samples" / "northwind"
    write_split(brands.NORTHWIND, tmp_path, "test", 3, seed=2026)
    for name in ("northwind-test-0000.jpg", "northwind-test-0001.jpg", "northwind-test-0002.jpg"):
        assert (tmp_path / "images" / "test" / name).read_bytes() == (samples / name).read_bytes(), name


def _bank():
    # Two "photos" no texture generator draws: a magenta/cyan chequer and a vertical ramp.
    yy, xx = np.mgrid[0:300, 0:400]
    chequer = np.where((((yy // 25) + (xx // 25)) % 2)[..., None] == 1, [255, 0, 255], [0, 255, 255]).astype(np.uint8)
    ramp = np.repeat(np.linspace(0, 255, 300, dtype=np.uint8)[:, None, None], 400, axis=1).repeat(3, axis=2)
    return [chequer, ramp]


def test_world_photo_scenes_are_product_free_real_backgrounds():
    world = scenes.World(_bank(), strong_camera=False)
    arts = scenes.ArtCache(brands.NORTHWIND, variants=1)
    rng = np.random.default_rng(5)
    scene = scenes.compose(rng, arts, "photo", (320, 240), world)
    assert scene.items == [] and scene.yolo_labels() == "" and scene.framing == "photo"
    arr = np.asarray(scene.image, dtype=float)
    # the background came from the bank: either the chequer's saturated colours or the grey ramp
    assert arr.std() > 20
    framings = {scenes.pick_framing(np.random.default_rng(k), world) for k in range(200)}
    assert framings == set(scenes.WORLD_FRAMINGS)
    assert "photo" not in {scenes.pick_framing(np.random.default_rng(k)) for k in range(200)}


def test_world_training_split_keeps_labels_inside_and_uses_the_strong_camera(tmp_path):
    brand = brands.AURORA
    plain = write_split(brand, tmp_path / "plain", "train", 6, seed=3)
    world = write_split(brand, tmp_path / "world", "train", 6, seed=3, world=scenes.World(_bank(), True))
    assert plain != world or any(
        (tmp_path / "plain" / "images" / "train" / r["image"]).read_bytes()
        != (tmp_path / "world" / "images" / "train" / r["image"]).read_bytes() for r in plain)
    for r in world:
        lines = (tmp_path / "world" / "labels" / "train" / r["image"].replace(".jpg", ".txt")).read_text().splitlines()
        assert len(lines) == len(r["items"]) and (r["framing"] != "photo" or not lines)
        for line in lines:
            _, cx, cy, w, h = map(float, line.split())
            assert 0 <= cx - w / 2 + 1e-6 and cx + w / 2 <= 1 + 1e-6 and 0 <= cy - h / 2 + 1e-6 and cy + h / 2 <= 1 + 1e-6


def test_strong_camera_casts_and_vignettes():
    img = Image.new("RGB", (200, 100), (128, 128, 128))
    outs = [np.asarray(scenes._strong_camera(np.random.default_rng(k), img), dtype=float) for k in range(8)]
    casts = [np.ptp(o[50, 100]) for o in outs]  # channel spread at the centre: a colour cast
    assert max(casts) > 10
    assert any(o[50, 100].mean() > o[2, 2].mean() + 5 for o in outs)  # darker corners


def test_pack_light_changes_the_packs_contrast_and_white_balance_about_its_own_mean():
    rng0 = np.random.default_rng(0)
    rgb = rng0.uniform(60, 200, (40, 30, 3)).astype(np.float32)
    inside = np.zeros((40, 30), dtype=bool)
    inside[5:35, 5:25] = True
    outs = [scenes._pack_light(np.random.default_rng(k), rgb.copy(), inside) for k in range(12)]
    spreads = [o[inside].std() / rgb[inside].std() for o in outs]
    assert min(spreads) < 0.85 and max(spreads) > 1.1  # washed out and harsh both occur
    # a white-balance error: the channels' gains differ (a grey pack would turn a colour)
    grey = np.full((10, 10, 3), 128, dtype=np.float32)
    casts = [np.ptp(scenes._pack_light(np.random.default_rng(k), grey, np.ones((10, 10), bool))[0, 0]) for k in range(12)]
    assert max(casts) > 10


def test_mixed_lighting_is_opt_in_and_leaves_older_training_sets_reproducible(tmp_path):
    brand = brands.NORTHWIND
    bank = _bank()
    before = write_split(brand, tmp_path / "a", "train", 4, seed=3, world=scenes.World(bank, True))
    again = write_split(brand, tmp_path / "b", "train", 4, seed=3, world=scenes.World(bank, True, False))
    mixed = write_split(brand, tmp_path / "c", "train", 4, seed=3, world=scenes.World(bank, True, True))
    same = lambda x, y, r: ((tmp_path / x / "images" / "train" / r["image"]).read_bytes()
                            == (tmp_path / y / "images" / "train" / r["image"]).read_bytes())
    assert before == again and all(same("a", "b", r) for r in before)
    assert any(r["items"] for r in before)
    assert not all(same("a", "c", r) for r in before if r["items"])


def test_low_resolution_loses_the_detail_keeps_the_frame_and_is_opt_in(tmp_path):
    rng = np.random.default_rng(0)
    sharp = Image.fromarray(rng.integers(0, 256, (72, 96, 3), dtype=np.uint8))
    def detail(im):  # mean absolute difference of neighbours: high for print, low once upscaled
        a = np.asarray(im, dtype=np.float32)
        return float(np.abs(np.diff(a, axis=1)).mean())
    soft = [scenes._low_resolution(np.random.default_rng(k), sharp) for k in range(6)]
    assert all(s.size == sharp.size for s in soft)
    assert max(detail(s) for s in soft) < 0.5 * detail(sharp)
    # Off by default: a training set made before the option is made again byte for byte; on, it differs.
    brand = brands.NORTHWIND
    bank = _bank()
    before = write_split(brand, tmp_path / "a", "train", 4, seed=3, world=scenes.World(bank, True, True))
    again = write_split(brand, tmp_path / "b", "train", 4, seed=3, world=scenes.World(bank, True, True, False))
    coarse = write_split(brand, tmp_path / "c", "train", 4, seed=3, world=scenes.World(bank, True, True, True))
    same = lambda x, y, r: ((tmp_path / x / "images" / "train" / r["image"]).read_bytes()
                            == (tmp_path / y / "images" / "train" / r["image"]).read_bytes())
    assert before == again and all(same("a", "b", r) for r in before)
    assert not all(same("a", "c", r) for r in before)


def test_any_angle_turns_packs_of_every_framing_over_the_whole_circle_and_is_opt_in(tmp_path):
    for framing in ("kiosk", "conveyor", "shelf"):
        plain = [a for k in range(40) for _, _, a in scenes._place(np.random.default_rng(k), framing, 3, 960, 720)]
        turned = [a for k in range(200)
                  for _, _, a in scenes._place(np.random.default_rng(k), framing, 3, 960, 720, any_angle=1.0)]
        octants = np.histogram(np.degrees(turned) % 360, bins=8, range=(0, 360))[0]
        # every direction, not only a tilt or quarter turns: each octant near an eighth of the packs
        assert octants.min() >= 0.5 * len(turned) / 8, (framing, octants)
        if framing != "conveyor":  # kiosk and shelf packs stand nearly upright without it
            assert max(abs(np.degrees(a)) for a in plain) <= 25
    # Off, a training set made before the option is made again byte for byte; on, it differs.
    brand = brands.AURORA
    bank = _bank()
    before = write_split(brand, tmp_path / "a", "train", 4, seed=3, world=scenes.World(bank, True, True))
    again = write_split(brand, tmp_path / "b", "train", 4, seed=3,
                        world=scenes.World(bank, True, True, False, 0.0, False))
    turned = write_split(brand, tmp_path / "c", "train", 4, seed=3, world=scenes.World(bank, True, True, False, 0.7))
    same = lambda x, y, r: ((tmp_path / x / "images" / "train" / r["image"]).read_bytes()
                            == (tmp_path / y / "images" / "train" / r["image"]).read_bytes())
    assert before == again and all(same("a", "b", r) for r in before)
    assert not all(same("a", "c", r) for r in before if r["items"])


def test_hard_negatives_are_shaped_objects_that_are_never_labelled(tmp_path):
    from hallmark_models import textures

    for kind in textures.HARD_NEGATIVES:
        obj = textures.hard_negative(np.random.default_rng(1), (80, 60), [(200, 30, 30)], kind)
        a = np.asarray(obj)
        assert obj.mode == "RGBA" and a[..., 3].max() == 255
        if kind in ("coin", "round"):  # round: nothing in the corners
            assert a[0, 0, 3] == 0 and a[-1, -1, 3] == 0 and a[a.shape[0] // 2, a.shape[1] // 2, 3] == 255
    # In scenes: the labels are the packs' alone, and an empty scene stays product-free.
    world = scenes.World(_bank(), True, False, False, 0.0, True)
    arts = scenes.ArtCache(brands.NORTHWIND, variants=1)
    for k, framing in enumerate(("empty", "photo", "kiosk", "conveyor")):
        with_objects = scenes.compose(np.random.default_rng(k), arts, framing, (320, 240), world)
        without = scenes.compose(np.random.default_rng(k), arts, framing, (320, 240), scenes.World(_bank(), True))
        if framing in ("empty", "photo"):
            assert with_objects.items == [] and with_objects.yolo_labels() == ""
            assert with_objects.image.tobytes() != without.image.tobytes()  # at least one object drawn
        assert all(it.class_id < len(arts.table) for it in with_objects.items)
    with pytest.raises(SystemExit, match="strong-camera"):
        from hallmark_models.generate import main

        main(["--brand", "aurora", "--out", str(tmp_path / "d"), "--train", "1", "--val", "0", "--test", "0",
              "--hard-negatives"])
