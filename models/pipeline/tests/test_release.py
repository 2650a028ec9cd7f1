"""Release helpers that need no model: YOLO labels back to pixels, and the trade-off picture."""

from PIL import Image

from hallmark_models import release


def test_yolo_labels_to_pixels(tmp_path):
    p = tmp_path / "a.txt"
    p.write_text("3 0.5 0.25 0.2 0.1\n")
    assert release.yolo_labels(p, 200, 100).tolist() == [[3, 80, 20, 120, 30]]
    assert release.yolo_labels(tmp_path / "none.txt", 10, 10).shape == (0, 5)


def test_tradeoff_picture_is_drawn(tmp_path):
    xs = [0.3, 0.5, 0.7, 0.9]
    curves = {"accuracy (val)": [(x, 0.95 + x / 20) for x in xs], "photos with an alarm (val)": [(x, 1 - x) for x in xs]}
    styles = {"accuracy (val)": ((0, 0, 255), False), "photos with an alarm (val)": ((0, 128, 0), True)}
    release.draw_tradeoff(tmp_path / "t.png", "title", curves, 0.7, styles)
    im = Image.open(tmp_path / "t.png").convert("RGB")
    assert im.size == (1000, 720)
    colours = {c for _, c in im.getcolors(1 << 20)}
    assert (0, 0, 255) in colours and (0, 128, 0) in colours


def test_a_release_keeps_variants_only_while_the_model_is_the_same():
    prev = {"model": {"sha256": "a" * 64}, "variants": [{"name": "fast-224"}]}
    assert release.kept_variants(prev, "a" * 64) == [{"name": "fast-224"}]
    assert release.kept_variants(prev, "b" * 64) is None
    assert release.kept_variants({"model": {"sha256": "a" * 64}}, "a" * 64) is None
    assert release.kept_variants(None, "a" * 64) is None
