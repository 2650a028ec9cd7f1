"""Release helpers that need no model: YOLO labels back to pixels, and the trade-off picture."""

import json

import pytest
from PIL import Image

from hallmark_models import evaluation, release


def test_yolo_labels_to_pixels(tmp_path):
    p = tmp_path / "a.txt"
    p.write_text("3 0.5 0.25 0.2 0.1\n")
    assert evaluation.yolo_labels(p, 200, 100).tolist() == [[3, 80, 20, 120, 30]]
    assert evaluation.yolo_labels(tmp_path / "none.txt", 10, 10).shape == (0, 5)


def test_tradeoff_picture_is_drawn(tmp_path):
    xs = [0.3, 0.5, 0.7, 0.9]
    curves = {"accuracy (val)": [(x, 0.95 + x / 20) for x in xs], "photos with an alarm (val)": [(x, 1 - x) for x in xs]}
    styles = {"accuracy (val)": ((0, 0, 255), False), "photos with an alarm (val)": ((0, 128, 0), True)}
    evaluation.draw_tradeoff(tmp_path / "t.png", "title", curves, 0.7, styles)
    im = Image.open(tmp_path / "t.png").convert("RGB")
    assert im.size == (1000, 720)
    colours = {c for _, c in im.getcolors(1 << 20)}
    assert (0, 0, 255) in colours and (0, 128, 0) in colours


def test_a_release_keeps_variants_only_while_the_model_is_the_same():
    t, m = {"genuine": 0.8}, {"verdict_accuracy": 0.9}
    prev = {"model": {"sha256": "a" * 64}, "variants": [{"name": "fast-224", "thresholds": {"genuine": 0.7},
                                                          "metrics": {"verdict_accuracy": 0.95}}]}
    assert release.kept_variants(prev, "a" * 64, t, m) == prev["variants"]
    assert release.kept_variants(prev, "b" * 64, t, m) is None
    assert release.kept_variants({"model": {"sha256": "a" * 64}}, "a" * 64, t, m) is None
    assert release.kept_variants(None, "a" * 64, t, m) is None


def test_a_prologue_variant_takes_the_new_thresholds_and_figures():
    of = {"model_sha256": "a" * 64, "prologue": "uint8 NHWC -> Cast -> Div 255 -> Transpose"}
    prev = {"model": {"sha256": "a" * 64},
            "variants": [{"name": "u8", "thresholds": {"genuine": 0.83}, "metrics": {"verdict_accuracy": 0.98,
                                                                                     "variant_of": of}},
                         {"name": "fast-224", "thresholds": {"genuine": 0.7}, "metrics": {"verdict_accuracy": 0.99}}]}
    new_t = {"genuine": 0.82, "counterfeit": 0.93}
    new_m = {"verdict_accuracy": 0.97, "inference_ms_median_ort_2_threads": 6.0}
    u8, fast = release.kept_variants(prev, "a" * 64, new_t, new_m)
    assert u8["thresholds"] == new_t
    assert u8["metrics"] == {"verdict_accuracy": 0.97, "variant_of": of}  # its own timing was never measured
    assert fast == prev["variants"][1]


def test_report_sections_of_kept_variants_survive_a_release():
    old = "# x\n\nmain\n\n## Variant `fast-224` (revision 8)\n\nfast text\n\n## Variant `u8` (revision 7)\n\nold u8\n"
    assert release._section(old, "fast-224").strip() == "## Variant `fast-224` (revision 8)\n\nfast text"
    assert release._section(old, "u8").strip() == "## Variant `u8` (revision 7)\n\nold u8"
    assert release._section(old, "gone") == ""


def test_composite_accuracy_is_split_by_whether_a_pack_is_turned(tmp_path):
    import json

    classes = [{"id": 0, "name": "a", "product": "A", "role": "genuine"},
               {"id": 1, "name": "a-counterfeit", "product": "A", "role": "counterfeit"}]
    rows = [{"image": "up.jpg", "framing": "composite", "items": [0], "quarter_turns": [0]},
            {"image": "side.jpg", "framing": "composite", "items": [0, 0], "quarter_turns": [0, 1]},
            {"image": "none.jpg", "framing": "photo", "items": []}]
    (tmp_path / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    turned = evaluation.turned_frames(tmp_path, "test")
    assert turned == {"side.jpg"}
    box = [10.0, 10.0, 50.0, 60.0]
    frames = [  # upright: found, genuine 0.95; turned frame: one found at 0.95, the turned one at 0.4
        {"name": "up.jpg", "kind": "composite", "detections": [box + [0.95, 0]], "labels": [[0] + box]},
        {"name": "side.jpg", "kind": "composite", "detections": [box + [0.95, 0], [100.0, 10.0, 140.0, 60.0, 0.4, 0]],
         "labels": [[0] + box, [0, 100.0, 10.0, 140.0, 60.0]]},
        {"name": "none.jpg", "kind": "photo", "detections": [], "labels": []},
    ]
    o = evaluation.by_orientation(frames, turned, classes, 0.8, 0.9, 0.15)
    assert o == {"upright": {"items": 1, "verdict_accuracy": 1.0}, "turned": {"items": 2, "verdict_accuracy": 0.5}}
    (tmp_path / "test.jsonl").write_text(json.dumps({"image": "old.jpg", "framing": "composite", "items": [0]}) + "\n")
    assert evaluation.turned_frames(tmp_path, "test") == set()  # a set written before turns were recorded



def test_a_several_draw_composite_set_is_also_scored_draw_by_draw():
    classes = [{"id": 0, "name": "a", "product": "A", "role": "genuine"},
               {"id": 1, "name": "a-counterfeit", "product": "A", "role": "counterfeit"}]
    box = [10.0, 10.0, 50.0, 60.0]
    frames = [  # draw 0: its genuine pack found; draw 2: one found, one missed; draw 1 holds the photo only
        {"name": "x-bus-0.jpg", "kind": "composite", "detections": [box + [0.95, 0]], "labels": [[0] + box]},
        {"name": "x-bus-d2-0.jpg", "kind": "composite", "detections": [box + [0.95, 0]], "labels": [[0] + box]},
        {"name": "x-bus-d2-1.jpg", "kind": "composite", "detections": [], "labels": [[0] + box]},
        {"name": "x-bus-none.jpg", "kind": "photo", "detections": [], "labels": []},
    ]
    assert [evaluation.composite_draw(f["name"]) for f in frames] == [0, 2, 2, 0]
    assert evaluation.composite_draw("x-left-d1-3.jpg") == 1 and evaluation.composite_draw("x-board-d-2.jpg") == 0
    got = evaluation.by_draw(frames, classes, 0.8, 0.9, 0.15)
    assert [(d["draw"], d["items"], d["verdict_accuracy"]) for d in got] == [(0, 1, 1.0), (2, 2, 0.5)]
    assert evaluation.by_draw(frames[:1] + frames[3:], classes, 0.8, 0.9, 0.15) == []  # one draw: nothing to split

def _res(tg: float, tc: float, floor: float) -> dict:
    """An `evaluate_brand` result for one genuine pack, as much as `metrics_of` and `thresholds_of` read."""
    from hallmark_models import verdicts as V

    classes = [{"id": 0, "name": "a", "product": "A", "role": "genuine"},
               {"id": 1, "name": "a-counterfeit", "product": "A", "role": "counterfeit"}]
    t = V.Table([V.scene_items("s", "kiosk", [[0, 0, 10, 10, 0.9, 0]], [[0, 0, 0, 10, 10]], ["genuine", "counterfeit"])],
                classes)
    s = V.score(t, tg, tc, 0.15)
    return {"doc": None, "test": s, "photos_test": s, "val": s, "sets": {"test": [{}]}, "by_framing": {},
            "val_sets": ["val"], "inference_ms": 3.0,
            "choice": {"genuine": tg, "counterfeit": tc, "margin": 0.15, "confidence": floor, "feasible": True,
                       "floors": [(0.25, tg, tc, 0.15, True, 1, 2), (floor, tg, tc, 0.15, True, 1, 0)]}}


def _res_one_counterfeit(tc: float, feasible: bool = True) -> dict:
    """`_res`'s shape for one counterfeit pack seen at 0.9 (called COUNTERFEIT when `tc` <= 0.9)."""
    from hallmark_models import verdicts as V

    classes = [{"id": 0, "name": "a", "product": "A", "role": "genuine"},
               {"id": 1, "name": "a-counterfeit", "product": "A", "role": "counterfeit"}]
    t = V.Table([V.scene_items("s", "kiosk", [[0, 0, 10, 10, 0.9, 1]], [[1, 0, 0, 10, 10]], ["genuine", "counterfeit"])],
                classes)
    return dict(_res(0.5, tc, 0.4), val=V.score(t, 0.5, tc, 0.15),
                choice={"genuine": 0.5, "counterfeit": tc, "margin": 0.15, "confidence": 0.4, "feasible": feasible})


def test_a_rule_that_accuses_nobody_or_misses_its_caps_is_not_signed(tmp_path):
    assert evaluation.refusals(_res_one_counterfeit(0.85)) == []
    assert evaluation.refusals(_res(0.81, 0.9, 0.4)) == []  # no counterfeit on validation: nothing to call
    (mute,) = evaluation.refusals(_res_one_counterfeit(0.99))  # 0.9 < 0.99: "scan again", right but mute
    assert "none of the 1 validation counterfeits COUNTERFEIT (counterfeit threshold 0.99" in mute
    (caps,) = evaluation.refusals(_res_one_counterfeit(0.85, feasible=False))
    assert "caps could not all be met" in caps
    # release() refuses before it writes or signs anything, for the main model and for a re-chosen variant
    out = tmp_path / "bundle"
    out.mkdir()
    with pytest.raises(evaluation.Refused, match="northwind: not signed: the rule calls none"):
        release.release("northwind", _res_one_counterfeit(0.99), tmp_path / "no.key", bundle_dir=out)
    with pytest.raises(evaluation.Refused, match="northwind variant fast-224: not signed: the caps"):
        release.release("northwind", _res_one_counterfeit(0.85), tmp_path / "no.key", bundle_dir=out,
                        variant_res={"fast-224": _res_one_counterfeit(0.85, feasible=False)})
    assert list(out.iterdir()) == []


def test_a_release_re_chooses_the_rule_of_a_variant_with_its_own_detector():
    of = {"model_sha256": "a" * 64, "fine_tuned": True}
    prev = {"model": {"sha256": "a" * 64},
            "variants": [{"name": "fast-224", "file": "model-224.onnx", "thresholds": {"confidence": 0.25, "genuine": 0.7},
                          "metrics": {"verdict_accuracy": 0.95, "map50": 0.9, "training": {"epochs": 3},
                                      "variant_of": of}}]}
    (fast,) = release.kept_variants(prev, "a" * 64, {"genuine": 0.8}, {}, {"fast-224": _res(0.81, 0.9, 0.4)})
    assert fast["thresholds"] == {"confidence": 0.4, "iou": evaluation.IOU, "genuine": 0.81, "counterfeit": 0.9,
                                  "margin": 0.15}
    m = fast["metrics"]
    # Its lineage, mAP50 and training record stay; the figures and the floors tried are the new rule's.
    assert m["variant_of"] == of and m["map50"] == 0.9 and m["training"] == {"epochs": 3}
    assert m["verdict_accuracy"] == 1.0 and m["phantom_items"] == 0
    assert [f["confidence"] for f in m["validation"]["item_floors"]] == [0.25, 0.4]
    assert (fast["file"], fast["name"]) == ("model-224.onnx", "fast-224")


def test_a_re_chosen_quarter_turns_variant_keeps_saying_what_it_is():
    of = {"model_sha256": "a" * 64, "turns": "four passes", "passes": 4,
          "max_abs_diff_vs_turned_passes": {"boxes_px": 0.0, "scores": 0.0}}
    doc = {"revision": 9, "model": {"file": "model.onnx", "sha256": "a" * 64, "input": {"width": 320}},
           "metrics": {}, "variants": [{"name": "quarter-turns", "file": "model-quarter-turns.onnx",
                                        "sha256": "b" * 64, "precision": "fp32",
                                        "input": {"width": 320, "height": 320},
                                        "thresholds": {"confidence": 0.7, "genuine": 0.82, "counterfeit": 0.88,
                                                       "margin": 0.15},
                                        "metrics": {"variant_of": of}}]}
    old = "# x\n\n## Variant `quarter-turns` (revision 8)\n\nMade by `python -m hallmark_models.turns --bundle b`.\n"
    text = release.variant_sections("northwind", doc, old, frozenset({"quarter-turns"}))
    assert "90°, 180° and 270° turns" in text and "exported at" not in text
    assert "Made by `python -m hallmark_models.turns --bundle b`; rule re-chosen by `python -m hallmark_models.release" in text


def test_cached_detections_belong_to_the_images_they_were_made_on(tmp_path):
    # A set regenerated with more images (same model, same name) must be detected again, not read from
    # the cache of the smaller set.
    import numpy as np

    class Counting:
        calls = 0

        def detect(self, rgb, conf, iou):
            Counting.calls += 1
            return np.zeros((0, 6))

    paths = []
    for k in range(3):
        p = tmp_path / f"im{k}.jpg"
        Image.new("RGB", (64, 48), (20 * k, 90, 60)).save(p)
        paths.append(p)
    entries = [(p.name, "photo", p, None) for p in paths]
    det = Counting()
    two = evaluation.detect_set(det, "ab" * 32, tmp_path / "cache", "photos-val", entries[:2])
    assert Counting.calls == 2 and len(two) == 2
    assert evaluation.detect_set(det, "ab" * 32, tmp_path / "cache", "photos-val", entries[:2]) == two
    assert Counting.calls == 2  # cached
    three = evaluation.detect_set(det, "ab" * 32, tmp_path / "cache", "photos-val", entries)
    assert Counting.calls == 5 and [f["name"] for f in three] == [p.name for p in paths]


def test_stored_rates_print_as_the_release_report_prints_them():
    """A variant's report reads the main model's figures back from the manifest: they must print as
    the release report printed them from the unrounded rate (173 of 179 is 96.6%, not 96.7%)."""
    from hallmark_models import variants

    for right, items in ((173, 179), (1, 3), (2, 3), (693, 718), (5, 8)):
        rate = right / items
        stored = evaluation.summary({"verdict_accuracy": rate, "table": [[0] * 4, [0] * 4]})["verdict_accuracy"]
        assert variants._pct(stored) == evaluation.pct(rate), (right, items)


def test_another_input_size_is_only_for_a_new_checkpoint(tmp_path, capsys):
    # the bundle's own model.onnx has its size; a size that is not a multiple of 32 is refused before any work
    for argv in (["--imgsz", "416"], ["--imgsz", "400", "--weights", str(tmp_path / "best.pt")]):
        with pytest.raises(SystemExit):
            release.main(["--brand", "northwind", "--data", str(tmp_path), "--dry-run", *argv])
        assert "--imgsz needs --weights" in capsys.readouterr().err


def test_the_manifest_and_the_report_count_product_free_frames_with_a_counterfeit_genuine_or_any_item():
    from hallmark_models import verdicts as V

    classes = [{"id": 0, "name": "a", "product": "A", "role": "genuine"},
               {"id": 1, "name": "a-counterfeit", "product": "A", "role": "counterfeit"}]
    roles = ["genuine", "counterfeit"]
    box = [0, 0, 10, 10]
    test = V.Table([V.scene_items("k", "kiosk", [box + [0.9, 0]], [[0] + box], roles),
                    V.scene_items("e1", "empty", [box + [0.9, 0]], [], roles),  # GENUINE on an empty counter
                    V.scene_items("e2", "empty", [], [], roles)], classes)
    photos = V.Table([V.scene_items("p1", "photo", [box + [0.95, 1]], [], roles),  # COUNTERFEIT
                      V.scene_items("p2", "photo", [box + [0.5, 0]], [], roles),  # scan again
                      V.scene_items("p3", "photo", [box + [0.85, 0]], [], roles),  # GENUINE
                      V.scene_items("p4", "photo", [], [], roles)], classes)
    views = V.Table([V.scene_items(f"v{i}", "photo", [box + [0.8, 0]] if i < 2 else [], [], roles)
                     for i in range(10)], classes)
    res = dict(_res(0.8, 0.9, 0.4), test=V.score(test, 0.8, 0.9, 0.15), photos_test=V.score(photos, 0.8, 0.9, 0.15),
               photo_views_val=V.score(views, 0.8, 0.9, 0.15))
    m = evaluation.metrics_of(res)
    assert m["product_free_frames"] == {"frames": 6, "with_counterfeit": 1, "with_genuine": 2, "with_item": 4}
    assert m["empty_scenes_with_genuine"] == 1 and m["product_free_photos"]["with_genuine"] == 1
    # validation: the one-pack table has no product-free frame, the views add 2 genuine of 10
    assert m["validation"]["product_free_frames"] == {"frames": 10, "with_counterfeit": 0, "with_genuine": 2,
                                                      "with_item": 2}
    doc = {"revision": 3, "model": {"sha256": "c" * 64}, "thresholds": evaluation.thresholds_of(res), "metrics": m}
    text = evaluation.report("northwind", doc, res)
    assert "| product-free frames (empty test scenes and test photos) with a counterfeit / genuine / any item" in text
    assert "| 1 / 2 / 4 of 6 |" in text and "| 0 / 2 / 2 of 10 |" in text


def test_packs_of_a_full_circle_set_are_scored_by_their_angle(tmp_path):
    classes = [{"id": 0, "name": "a", "product": "A", "role": "genuine"},
               {"id": 1, "name": "a-counterfeit", "product": "A", "role": "counterfeit"}]
    left, right = [10.0, 10.0, 50.0, 60.0], [200.0, 10.0, 240.0, 60.0]
    frames = [  # two packs in one frame at 10 and 100 degrees: the first found, the second missed
        {"name": "x-0.jpg", "kind": "composite", "detections": [left + [0.95, 0]], "labels": [[0] + left, [0] + right]},
        # a counterfeit at 44 degrees called genuine; a genuine pack at 181 degrees found
        {"name": "x-1.jpg", "kind": "composite", "detections": [left + [0.95, 0]], "labels": [[1] + left]},
        {"name": "x-2.jpg", "kind": "composite", "detections": [right + [0.9, 0]], "labels": [[0] + right]},
        {"name": "x-none.jpg", "kind": "photo", "detections": [], "labels": []},
    ]
    rows = [{"image": "x-0.jpg", "angles": [10.0, 100.0]}, {"image": "x-1.jpg", "angles": [44.0]},
            {"image": "x-2.jpg", "angles": [181.0]}, {"image": "x-none.jpg"}]
    (tmp_path / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    angles = evaluation.pack_angles(tmp_path, "test")
    assert angles == {"x-0.jpg": [10.0, 100.0], "x-1.jpg": [44.0], "x-2.jpg": [181.0]}
    got = evaluation.by_angle(frames, angles, classes, 0.8, 0.9, 0.15)
    off = got["off_axis"]
    assert list(off) == ["0-15", "15-30", "30-45"]
    # off the nearest quarter turn: 10, 10 (100), 44, 1 (181)
    assert (off["0-15"]["items"], off["0-15"]["verdict_accuracy"], off["0-15"]["missed"]) == (3, evaluation.rate(2 / 3), 1)
    assert off["15-30"] == {"items": 0}
    assert (off["30-45"]["items"], off["30-45"]["counterfeit_called_genuine"]) == (1, 1.0)
    q = got["quarter_turn"]
    assert q["0"]["items"] == 2 and q["0"]["verdict_accuracy"] == 0.5  # 10 right, 44 a fake called genuine
    assert (q["1"]["items"], q["1"]["missed"]) == (1, 1) and q["2"]["verdict_accuracy"] == 1.0 and q["3"] == {"items": 0}
    assert evaluation.by_angle(frames, {}, classes, 0.8, 0.9, 0.15) == {}
