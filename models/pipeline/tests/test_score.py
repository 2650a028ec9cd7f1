"""Scoring a signed bundle's shipped rules on a labelled set: the shipped Northwind bundle on its samples."""

import json
import shutil
from pathlib import Path

from hallmark_models import score
from hallmark_models.prologue import is_prologue

MODELS = Path(__file__).resolve().parents[2]


def sample_set(root: Path, relabel=None) -> int:
    """The Northwind samples as a one-split set (optionally with each label's class mapped by relabel);
    returns the number of packs."""
    (root / "images" / "test").mkdir(parents=True)
    (root / "labels" / "test").mkdir(parents=True)
    rows, packs = [], 0
    for img in sorted((MODELS / "samples" / "northwind").glob("*.jpg"))[:4]:
        shutil.copy(img, root / "images" / "test" / img.name)
        lines = img.with_suffix(".txt").read_text().splitlines()
        if relabel:
            lines = [" ".join([str(relabel(int(l.split()[0])))] + l.split()[1:]) for l in lines]
        (root / "labels" / "test" / f"{img.stem}.txt").write_text("".join(l + "\n" for l in lines))
        rows.append({"image": img.name, "framing": "kiosk", "items": [int(l.split()[0]) for l in lines]})
        packs += len(lines)
    (root / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return packs


def test_every_detector_of_the_bundle_is_scored_with_its_own_manifest_rule(tmp_path):
    doc = json.loads((MODELS / "northwind" / "manifest.json").read_text())
    packs = sample_set(tmp_path / "set")
    res = score.score(MODELS / "northwind", tmp_path / "set")
    own = {v["name"]: v["thresholds"] for v in doc["variants"] if not is_prologue(v)}
    assert set(res) == {"main"} | set(own) and "u8" not in res  # the u8 prologue has the main model's scores
    assert res["main"]["thresholds"] == doc["thresholds"]
    for name, t in own.items():
        assert res[name]["thresholds"] == t
    for name, s in res.items():
        assert s["items"] == packs and s["by_draw"] == []
        # the samples are what the agent's suite holds the shipped bundle to: every pack right
        assert s["genuine_called_counterfeit"] == 0 and s["counterfeit_called_genuine"] == 0, (name, s)
        assert s["verdict_accuracy"] >= 0.9, (name, s)


def test_the_labels_decide_what_counts_as_right(tmp_path):
    # The same frames labelled as each product's other role (genuine <-> counterfeit, classes come in
    # pairs): what the bundle calls genuine is now a counterfeit called genuine.
    classes = json.loads((MODELS / "northwind" / "manifest.json").read_text())["classes"]
    other = {c["id"]: next(d["id"] for d in classes if d["product"] == c["product"] and d["role"] != c["role"])
             for c in classes}
    sample_set(tmp_path / "right")
    sample_set(tmp_path / "swapped", relabel=other.get)
    right = score.score(MODELS / "northwind", tmp_path / "right")["main"]
    swapped = score.score(MODELS / "northwind", tmp_path / "swapped")["main"]
    called_genuine = right["verdicts_per_pack"]["genuine_pack"]["genuine"]
    assert called_genuine > 0
    assert swapped["verdicts_per_pack"]["counterfeit_pack"]["genuine"] == called_genuine
    assert swapped["counterfeit_called_genuine"] > 0 and swapped["verdict_accuracy"] < right["verdict_accuracy"]


def test_product_free_frames_are_counted_by_what_the_model_calls_on_them(tmp_path):
    # A product-free set (photos.product_free_set): a flat frame, an empty sample scene, and a
    # sample scene with one genuine Earl Grey passed off as product-free. Whatever the shipped model
    # calls on that pack is an item on a product-free frame: here its GENUINE.
    from PIL import Image

    from hallmark_models import photos

    root = tmp_path / "photos"
    root.mkdir()
    for k in range(3):  # one photo per third
        Image.new("RGB", (400, 300), (100 + 20 * k, 128, 128)).save(root / f"grey{k}.png")
    extra = [MODELS / "samples" / "northwind" / "northwind-test-0001.jpg",  # no pack in view
             MODELS / "samples" / "northwind" / "northwind-test-0005.jpg"]  # one genuine earl-grey
    rows = photos.product_free_set(tmp_path / "set", "test", extra=tuple(extra), root=root)
    (test_photo,) = [n for n, split in photos.assign([f"grey{k}.png" for k in range(3)]).items() if split == "test"]
    assert [r["image"] for r in rows] == [test_photo, "extra-northwind-test-0001.jpg", "extra-northwind-test-0005.jpg"]
    assert [r["source"] for r in rows] == ["opencv-doc test", "extra", "extra"]
    res = score.score(MODELS / "northwind", tmp_path / "set")
    main = res["main"]
    assert main["items"] == 0 and main["product_free_frames"]["frames"] == len(rows)
    assert main["photo_scenes_with_genuine"] >= 1 and main["genuine_phantom_items"] >= 1
    free = main["product_free_frames"]
    assert free["with_genuine"] == main["photo_scenes_with_genuine"] <= free["with_item"] <= free["frames"]
    assert "product-free frames with a counterfeit / genuine / any item" in score.line("main", main)


def test_a_rule_or_a_candidate_detector_can_be_scored_before_any_release(tmp_path):
    import pytest

    packs = sample_set(tmp_path / "set")
    doc = json.loads((MODELS / "northwind" / "manifest.json").read_text())
    t = doc["thresholds"]
    shipped = score.score(MODELS / "northwind", tmp_path / "set")["main"]
    # the main model's own detector as a "candidate", with the shipped rule: the same figures as main
    same = f"{t['confidence']},{t['genuine']},{t['counterfeit']},{t['margin']}"
    name, rule = score.parse_rule(f"cand={same}")
    got = score.score(MODELS / "northwind", tmp_path / "set", rule={name: rule},
                      models={"cand": MODELS / "northwind" / "model.onnx"})
    assert {k: v for k, v in got["cand"].items() if k != "thresholds"} == \
        {k: v for k, v in shipped.items() if k != "thresholds"}
    # a genuine threshold no box reaches: every genuine pack the shipped rule called genuine now scans again
    strict = score.score(MODELS / "northwind", tmp_path / "set",
                         rule=dict([score.parse_rule(f"main={t['confidence']},1.0,{t['counterfeit']},{t['margin']}")]))
    assert strict["main"]["thresholds"]["genuine"] == 1.0 and strict["main"]["items"] == packs
    g = shipped["verdicts_per_pack"]["genuine_pack"]
    assert g["genuine"] > 0
    assert strict["main"]["verdicts_per_pack"]["genuine_pack"]["genuine"] == 0
    assert strict["main"]["verdicts_per_pack"]["genuine_pack"]["inconclusive"] == g["inconclusive"] + g["genuine"]
    for bad in ({"models": {"main": MODELS / "northwind" / "model.onnx"}, "rule": {"main": rule}},  # a clash
                {"models": {"cand": MODELS / "northwind" / "model.onnx"}},  # a candidate without a rule
                {"rule": {"nothing": rule}}):
        with pytest.raises(ValueError):
            score.score(MODELS / "northwind", tmp_path / "set", **bad)
    for text in ("main=0.5,0.6,0.9", "main=0.9,0.6,0.5,0.15", "=0.5,0.6,0.9,0.15"):
        with pytest.raises(ValueError):
            score.parse_rule(text)
