"""Onboarding's parts that need no training: turned copies of labelled photos, the upload's content digest
(the same in every format), the agent's scan scored per class, the confusion table and the advice."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from hallmark_models import brand_report, split, upload
from hallmark_models.onboard import _quarter_turn, content_digest

from test_upload import make_upload

CLASSES = [{"id": 0, "name": "espresso", "product": "Espresso", "gtin": "05061234010116", "role": "genuine"},
           {"id": 1, "name": "espresso-counterfeit", "product": "Espresso", "gtin": "05061234010116", "role": "counterfeit"},
           {"id": 2, "name": "decaf", "product": "Decaf", "gtin": "05061234010284", "role": "genuine"}]


@pytest.mark.parametrize("k", [1, 2, 3])
def test_a_quarter_turned_photo_keeps_its_box_on_its_pack(tmp_path, k):
    im = Image.new("RGB", (200, 120), (0, 0, 0))
    ImageDraw.Draw(im).rectangle([30, 20, 89, 49], fill=(255, 0, 0))
    im.save(tmp_path / "a.png")
    boxes, (w, h) = _quarter_turn(tmp_path / "a.png", [(0, 30, 20, 90, 50)], 200, 120, k, tmp_path / "b.png")
    red = np.asarray(Image.open(tmp_path / "b.png").convert("RGB"))[..., 0] > 128
    ys, xs = np.nonzero(red)
    assert (w, h) == red.shape[::-1]
    _, x1, y1, x2, y2 = boxes[0]
    assert abs(xs.min() - x1) <= 1 and abs(xs.max() + 1 - x2) <= 1
    assert abs(ys.min() - y1) <= 1 and abs(ys.max() + 1 - y2) <= 1


def test_the_same_upload_in_every_format_has_one_content_digest(tmp_path):
    digests = set()
    for fmt in upload.FORMATS:
        make_upload(tmp_path / fmt, fmt=fmt, offset=0.3)  # labelling tools give fractions
        up, _ = upload.check(tmp_path / fmt)
        index = {"espresso": 0, "espresso-counterfeit": 1, "decaf": 2}
        splits = split.assign([p.sha256 for p in up.photos], [[up.class_of(b)] for p in up.photos for b in p.boxes[:1]]
                              + [[] for p in up.photos if not p.boxes], [split.thumbnail(p.path) for p in up.photos])
        rows = [{"sha256": p.sha256, "split": s, "boxes": [(index[up.class_of(b)], b.x1, b.y1, b.x2, b.y2) for b in p.boxes]}
                for p, s in zip(up.photos, splits)]
        digests.add(content_digest(rows))
    assert len(digests) == 1


def test_the_agents_scan_is_scored_per_class_and_on_product_free_photos():
    labels = {"a.jpg": [("espresso", [0, 0, 10, 10])], "b.jpg": [("espresso-counterfeit", [0, 0, 10, 10])],
              "c.jpg": [("decaf", [0, 0, 10, 10])], "d.jpg": []}
    records = [{"image": "x/a.jpg", "items": [{"box": [0, 0, 10, 10], "verdict": "genuine", "product": "Espresso",
                                               "confidence": 0.9}]},
               {"image": "x/b.jpg", "items": [{"box": [1, 0, 10, 10], "verdict": "genuine", "product": "Espresso",
                                               "confidence": 0.8}]},
               {"image": "x/c.jpg", "items": [{"box": [0, 0, 10, 10], "verdict": "genuine", "product": "Espresso",
                                               "confidence": 0.7}]},
               {"image": "x/d.jpg", "items": [{"box": [50, 50, 60, 60], "verdict": "inconclusive", "product": "Decaf",
                                               "confidence": 0.4}]}]
    f = brand_report.agent_figures(records, labels, CLASSES)
    assert (f["items"], f["right"]) == (3, 1)
    assert f["counterfeit_called_genuine"] == 1.0 and f["genuine_called_counterfeit"] == 0.0
    assert f["per_class"]["decaf"]["genuine, other product"] == 1
    assert f["product_free_frames"] == {"frames": 1, "with_counterfeit": 0, "with_genuine": 0, "with_item": 1}
    assert f["mistakes"] == ["b.jpg", "c.jpg"]


def test_the_confusion_table_counts_what_each_class_was_called():
    frames = [{"name": "a", "kind": "upload", "labels": [[0, 0, 0, 10, 10], [1, 20, 0, 30, 10], [2, 40, 0, 50, 10]],
               "detections": [[0, 0, 10, 10, 0.9, 0], [20, 0, 30, 10, 0.95, 1], [20, 0, 30, 10, 0.5, 0]]}]
    t = brand_report.confusion(frames, CLASSES, {"confidence": 0.25, "genuine": 0.6, "counterfeit": 0.8, "margin": 0.15})
    assert t["espresso"]["genuine"] == 1
    assert t["espresso-counterfeit"]["counterfeit"] == 1
    assert t["decaf"]["missed"] == 1
    md = "\n".join(brand_report.confusion_md(t, CLASSES))
    assert "| decaf | 0 | 0 | 0 | 0 | 1 | 0 of 1 (0.0%) |" in md


def test_advice_names_the_class_its_errors_and_what_to_add(tmp_path):
    dark = tmp_path / "dark.png"
    Image.new("RGB", (100, 100), (30, 25, 20)).save(dark)
    bright = tmp_path / "bright.png"
    Image.new("RGB", (100, 100), (180, 180, 180)).save(bright)
    table = {"espresso": dict.fromkeys(brand_report.COLUMNS, 0), "espresso-counterfeit": dict.fromkeys(brand_report.COLUMNS, 0),
             "decaf": dict.fromkeys(brand_report.COLUMNS, 0)}
    table["espresso-counterfeit"].update(genuine=3, counterfeit=10)
    table["espresso"].update(genuine=20)
    table["decaf"].update(genuine=20)
    counts = {"espresso-counterfeit": {"train": 8, "val": 3, "test": 3}, "espresso": {"train": 30, "val": 10, "test": 10},
              "decaf": {"train": 30, "val": 10, "test": 10}}
    lines = brand_report.advice(CLASSES, counts, table, {"espresso-counterfeit": [(dark, [0, 0, 100, 100])]},
                                {"espresso-counterfeit": [(bright, [0, 0, 100, 100])]},
                                {"frames": 10, "with_counterfeit": 1, "with_genuine": 0})
    assert lines[0].startswith("espresso-counterfeit: 14 photos (8 train, 3 val, 3 test)")
    assert "3 called genuine" in lines[0] and "add photos (30 or more; it has 14)" in lines[0]
    assert "dim light" in lines[0]
    assert not any(line.startswith("espresso:") for line in lines)
    assert lines[-1].startswith("product-free views: 1 of 10")


def test_advice_names_a_counterfeit_class_the_rule_never_accuses():
    table = {c["name"]: dict.fromkeys(brand_report.COLUMNS, 0) for c in CLASSES}
    table["espresso-counterfeit"].update(inconclusive=9)
    table["espresso"].update(genuine=9)
    table["decaf"].update(genuine=9)
    counts = {c["name"]: {"train": 27, "val": 9, "test": 9} for c in CLASSES}
    lines = brand_report.advice(CLASSES, counts, table, {}, {}, {"frames": 0})
    assert len(lines) == 1, lines
    assert lines[0].startswith("espresso-counterfeit: 45 photos (27 train, 9 val, 9 test); on validation 9 packs")
    assert "9 left 'scan again', none called counterfeit" in lines[0] and "train longer" in lines[0]
    table["espresso-counterfeit"].update(inconclusive=5, counterfeit=4)  # some accused: 'scan again' is safe
    assert brand_report.advice(CLASSES, counts, table, {}, {}, {"frames": 0}) == []


def test_the_inbox_onboards_an_upload_once_it_is_ready_and_marks_a_refused_one_failed(tmp_path):
    from hallmark_models import bundle, onboard

    inbox = tmp_path / "inbox"
    (inbox / "waiting").mkdir(parents=True)  # no READY yet: left alone
    (inbox / "broken").mkdir()
    (inbox / "broken" / "READY").write_text("")  # no brand.toml, no photos: refused at the check
    bundle.keygen(tmp_path / "k.pem", tmp_path / "k.pub.pem")
    onboard.watch(inbox, tmp_path / "out", tmp_path / "k.pem", 5, once=True)
    assert (inbox / "broken" / "FAILED").read_text().strip() == "exit status 2"
    assert not (inbox / "waiting" / "FAILED").exists() and not (inbox / "waiting" / "DONE").exists()
    assert not (tmp_path / "out").exists(), "nothing was trained or written"
