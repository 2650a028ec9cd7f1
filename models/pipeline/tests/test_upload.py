"""A brand's upload: the three formats read to the same boxes, and the check finds every kind of problem
at once, by file and line."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hallmark_models import gs1, upload

PREFIX = "5061234"
GTIN = gs1.to_gtin14(gs1.gtin13(PREFIX, 1011))
GTIN2 = gs1.to_gtin14(gs1.gtin13(PREFIX, 1028))
BRAND = f"""[brand]
key = "kestrel"
name = "Kestrel Coffee"
gs1_prefixes = ["{PREFIX}"]

[[products]]
key = "espresso"
name = "Kestrel Espresso"
gtins = ["{GTIN}"]

[[products]]
key = "decaf"
name = "Kestrel Decaf"
gtins = ["{GTIN2}"]
"""


def make_upload(root: Path, per_class: int = 12, empty: int = 2, fmt: str = "coco", brand: str = BRAND,
                offset: float = 0.0) -> upload.Upload:
    """A small upload: per_class photos of espresso, of its counterfeit and of decaf (genuine only), and
    `empty` product-free photos, each a distinct random image, written in `fmt`."""
    src = root.parent / f"{root.name}-src"
    src.mkdir(parents=True)
    rng = np.random.default_rng(0)
    photos = []
    labels = ["espresso"] * per_class + ["espresso-counterfeit"] * per_class + ["decaf"] * per_class + [None] * empty
    for k, label in enumerate(labels):
        w, h = 160 + 8 * (k % 5), 120
        p = src / f"p{k:03d}.jpg"
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(p)
        boxes = [upload.Box(label, 10.0 + k % 7 + offset, 12.0 + offset, 90.0 + offset, 100.0 + offset)] if label else []
        photos.append(upload.Photo(p.name, p, boxes, width=w, height=h))
    (src / "brand.toml").write_text(brand)
    up = upload.Upload(src, "coco", None, photos)
    upload.write(up, root, fmt)
    return up


@pytest.mark.parametrize("fmt", upload.FORMATS)
def test_each_format_reads_back_the_same_photos_and_boxes(tmp_path, fmt):
    written = make_upload(tmp_path / "up", fmt=fmt)
    got, problems = upload.check(tmp_path / "up")
    assert got.format == fmt
    assert not upload.errors(problems), problems
    want = {Path(p.name).name: [(b.label, b.x1, b.y1, b.x2, b.y2) for b in p.boxes] for p in written.photos}
    have = {Path(p.name).name: [(b.label, b.x1, b.y1, b.x2, b.y2) for b in p.boxes] for p in got.photos}
    assert set(have) == set(want)
    for name, boxes in want.items():
        assert [b[0] for b in have[name]] == [b[0] for b in boxes]
        for a, b in zip(have[name], boxes):
            assert np.allclose(a[1:], b[1:], atol=0.05), (name, a, b)


def test_converting_between_formats_keeps_every_box(tmp_path):
    make_upload(tmp_path / "coco")
    up, _ = upload.check(tmp_path / "coco")
    upload.write(up, tmp_path / "voc", "voc")
    voc, _ = upload.check(tmp_path / "voc")
    upload.write(voc, tmp_path / "yolo", "yolo")
    yolo, _ = upload.check(tmp_path / "yolo")
    boxes = lambda u: sorted((Path(p.name).name, b.label, round(b.x1), round(b.y2)) for p in u.photos for b in p.boxes)  # noqa: E731
    assert boxes(up) == boxes(voc) == boxes(yolo)
    assert sum(1 for p in yolo.photos if not p.boxes) == 2  # product-free photos survive as images without labels


def test_yolo_names_in_any_of_the_usual_forms():
    assert upload._yaml_names("nc: 2\nnames: ['a', 'b c']\n") == ["a", "b c"]
    assert upload._yaml_names("names:\n  - a\n  - b\nnc: 2\n") == ["a", "b"]
    assert upload._yaml_names("names:\n  0: a\n  1: b\n") == ["a", "b"]
    assert upload._yaml_names("names: {0: a, 1: b}\n") == ["a", "b"]


def test_a_bad_upload_is_refused_with_every_problem_by_file_and_line(tmp_path):
    bad_brand = BRAND.replace(GTIN2, GTIN2[:-1] + str((int(GTIN2[-1]) + 1) % 10)).replace(
        'gtins = ["' + GTIN + '"]', 'gtins = ["' + GTIN + '", "04006381333931"]')
    make_upload(tmp_path / "up", per_class=12, brand=bad_brand)
    root = tmp_path / "up"
    doc = json.loads((root / "annotations.json").read_text())
    # a box outside its image, an empty box, a label of no class, a duplicate image, an unreadable image,
    # and too few photos of the counterfeit (drop all but 4 of its boxes)
    doc["annotations"][0]["bbox"] = [100, 10, 400, 50]
    doc["annotations"][1]["bbox"] = [10, 10, 0, 30]
    doc["categories"].append({"id": 99, "name": "lungo"})
    doc["annotations"][2]["category_id"] = 99
    fake = [a for a in doc["annotations"] if a["category_id"] == next(c["id"] for c in doc["categories"]
                                                                      if c["name"] == "espresso-counterfeit")]
    doc["annotations"] = [a for a in doc["annotations"] if a not in fake[4:]]
    (root / "images" / doc["images"][5]["file_name"]).write_bytes((root / "images" / doc["images"][4]["file_name"]).read_bytes())
    (root / "images" / doc["images"][6]["file_name"]).write_bytes(b"not a jpeg")
    (root / "annotations.json").write_text(json.dumps(doc, indent=1))
    _, problems = upload.check(root)
    errs = [str(p) for p in upload.errors(problems)]
    text = "\n".join(errs)
    assert any("lies outside" in e and "annotations.json:" in e for e in errs), text
    assert any("is empty" in e for e in errs), text
    assert any("'lungo' names no class" in e for e in errs), text
    assert any("is the same file as" in e for e in errs), text
    assert any("cannot be read" in e for e in errs), text
    assert any("espresso: 4 photos of its counterfeit" in e for e in errs), text
    assert any("bad check digit" in e and "brand.toml:" in e for e in errs), text
    assert any("outside the brand's GS1 prefixes" in e for e in errs), text
    # each carries its line: the annotation's own line in annotations.json
    line_of_first = next(p.line for p in problems if "lies outside" in p.message)
    lines = (root / "annotations.json").read_text().splitlines()
    assert lines[line_of_first - 1].strip() == "{"
    assert f'"id": {doc["annotations"][0]["id"]},' in "\n".join(lines[line_of_first:line_of_first + 3])
    assert "nothing was trained" in upload.report_problems(problems)


def test_an_upload_without_brand_toml_or_photos_says_so(tmp_path):
    (tmp_path / "x").mkdir()
    _, problems = upload.check(tmp_path / "x")
    msgs = " ".join(p.message for p in upload.errors(problems))
    assert "brand.toml" in msgs and "no labelled photos found" in msgs


def test_a_product_with_genuine_photos_only_has_no_counterfeit_class(tmp_path):
    make_upload(tmp_path / "up")
    up, problems = upload.check(tmp_path / "up")
    classes = up.brand.classes(set(upload.class_photo_counts(up)))
    assert [c["name"] for c in classes] == ["espresso", "espresso-counterfeit", "decaf"]
    assert [c["role"] for c in classes] == ["genuine", "counterfeit", "genuine"]
    assert any("decaf: no counterfeit photos" in p.message and not p.error for p in problems)


def test_label_names_map_through_brand_toml_classes(tmp_path):
    brand = BRAND.replace('gtins = ["' + GTIN + '"]',
                          'gtins = ["' + GTIN + '"]\nclasses = { genuine = "Espresso", counterfeit = "Espresso (fake)" }')
    spec = upload.read_brand(_write(tmp_path / "brand.toml", brand), [])
    assert spec.label_classes()["Espresso (fake)"] == "espresso-counterfeit"
    assert spec.label_classes()["decaf"] == "decaf"
    inverse = BRAND.replace('gtins = ["' + GTIN + '"]', 'gtins = ["' + GTIN + '"]\nclasses = { "Espresso" = "genuine" }')
    spec = upload.read_brand(_write(tmp_path / "brand2.toml", inverse), [])
    assert spec.label_classes()["Espresso"] == "espresso"


def _write(p: Path, text: str) -> Path:
    p.write_text(text)
    return p
