"""Adding a variant to a copy of a bundle (`hallmark_models.variant`): the parts that need no torch run in
the light venv; the export check runs where torch and yolov5 are installed (training venv)."""

import json
from pathlib import Path

import pytest

from conftest import signed_bundle
from hallmark_models import bundle, variant

MODELS = Path(__file__).resolve().parents[2]
MAIN_METRICS = {"verdict_accuracy": 0.98, "genuine_called_counterfeit": 0.0, "counterfeit_called_genuine": 0.0,
                "counterfeit_called_counterfeit": 0.5, "empty_scenes": 14, "empty_scenes_with_false_alarm": 0,
                "product_free_photos": {"photos": 22, "with_false_alarm": 0}, "map50": 0.9,
                "validation": {"verdict_accuracy": 0.99, "genuine_called_counterfeit": 0.0,
                               "counterfeit_called_genuine": 0.0, "caps_met": True}}
TH = {"confidence": 0.25, "iou": 0.45, "genuine": 0.8, "counterfeit": 0.9, "margin": 0.15}


@pytest.fixture
def src(tmp_path):
    out, _ = signed_bundle(tmp_path, "src", b"main model bytes", revision=4,
                           thresholds=dict(TH, genuine=0.84, counterfeit=0.95), metrics=MAIN_METRICS,
                           files={"report.md": "# aurora — model revision 4\n\nmain figures\n".encode()})
    return out


def _entry(tmp_path, name="fast-224", payload=b"variant bytes", size=224, accuracy=0.97):
    f = tmp_path / f"{name}.onnx"
    f.write_bytes(payload)
    io = {"name": "images", "dtype": "float32", "width": size, "height": size, "outputs": ["output0"]}
    return f, variant.entry(name, f"model-{size}.onnx", bundle.sha256_file(f), io, TH,
                            dict(MAIN_METRICS, verdict_accuracy=accuracy))


def test_the_variant_goes_into_a_signed_copy_and_the_main_model_is_kept(src, tmp_path):
    before = {p.name: p.read_bytes() for p in src.iterdir() if p.is_file()}
    f, v = _entry(tmp_path)
    pic = tmp_path / "pic.png"
    pic.write_bytes(b"png")
    out = tmp_path / "out"
    doc = variant.add_variant(src, out, f, v, bundle.load_private(tmp_path / "k.pem"), {"tradeoff-fast-224.png": pic})
    got = bundle.verify(out, bundle.load_public(tmp_path / "k.pub.pem"))
    assert got == doc
    old = json.loads(before["manifest.json"])
    assert got["revision"] == old["revision"] + 1 == 5
    for k in ("model", "thresholds", "metrics", "classes", "gs1_prefixes", "brand"):
        assert got[k] == old[k], k
    assert got["variants"] == [v]
    assert (out / "model-224.onnx").read_bytes() == b"variant bytes"
    assert (out / "model.onnx").read_bytes() == before["model.onnx"]
    assert (out / "tradeoff-fast-224.png").read_bytes() == b"png"
    report = (out / "report.md").read_text()
    assert report.startswith("# aurora — model revision 4\n\nmain figures\n")
    assert "## Variant `fast-224` (revision 5)" in report and "| test accuracy | 98.0% | 97.0% |" in report
    # the source is untouched
    assert {p.name: p.read_bytes() for p in src.iterdir() if p.is_file()} == before


def test_a_variant_of_the_same_name_is_replaced_and_others_kept(src, tmp_path):
    key = bundle.load_private(tmp_path / "k.pem")
    f1, v1 = _entry(tmp_path, accuracy=0.9)
    variant.add_variant(src, tmp_path / "a", f1, v1, key)
    f2, v2 = _entry(tmp_path, name="small-256", payload=b"256 bytes", size=256)
    variant.add_variant(tmp_path / "a", tmp_path / "b", f2, v2, key)
    f3, v3 = _entry(tmp_path, payload=b"a newer 224", size=192, accuracy=0.95)
    doc = variant.add_variant(tmp_path / "b", tmp_path / "c", f3, v3, key)
    assert [v["name"] for v in doc["variants"]] == ["small-256", "fast-224"]
    assert doc["variants"][1]["file"] == "model-192.onnx" and doc["revision"] == 7
    assert not (tmp_path / "c" / "model-224.onnx").exists()  # the replaced variant's file went with it
    bundle.verify(tmp_path / "c", bundle.load_public(tmp_path / "k.pub.pem"))
    report = (tmp_path / "c" / "report.md").read_text()
    assert report.count("## Variant `fast-224`") == 1 and "95.0%" in report and "90.0%" not in report
    assert report.count("## Variant `small-256`") == 1


def test_a_non_empty_out_is_refused_and_a_bad_entry_leaves_nothing(src, tmp_path):
    key = bundle.load_private(tmp_path / "k.pem")
    f, v = _entry(tmp_path)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("x")
    with pytest.raises(FileExistsError):
        variant.add_variant(src, tmp_path / "busy", f, v, key)
    with pytest.raises(bundle.BundleError, match="multiple of 32"):
        variant.add_variant(src, tmp_path / "out", f, dict(v, input=dict(v["input"], width=230)), key)
    assert not (tmp_path / "out").exists() and not (tmp_path / ".out.part").exists()


def _fine_tune(folder: Path, parent: str, payload: bytes = b"fine-tuned weights", parent_record: dict | None = None) -> Path:
    """A checkpoint and the training.json train.py writes beside it (`stage_record`), naming `parent`
    (and nesting its record, as train.py does when the parent has one)."""
    folder.mkdir(parents=True, exist_ok=True)
    pt = folder / "best.pt"
    pt.write_bytes(payload)
    record = {"params": {"imgsz": 224, "lr0": 0.0002}, "epochs_run": 3, "seconds": 61.5,
              "sha256": bundle.sha256_file(pt), "continued_from": {"file": "best.pt", "sha256": parent}}
    if parent_record is not None:
        record["continued_from"]["training"] = parent_record
    (folder / "training.json").write_text(json.dumps(record))
    return pt


def test_a_fine_tuned_variant_must_descend_from_the_main_models_checkpoint(tmp_path):
    main = "a" * 64
    doc = {"metrics": dict(MAIN_METRICS, training={"sha256": main})}
    assert variant.main_checkpoint_sha256(doc) == main
    with pytest.raises(ValueError, match="metrics.training.sha256"):
        variant.main_checkpoint_sha256({"metrics": MAIN_METRICS})
    # the right parent passes and the record comes back (its params and seconds go into variant_of)
    ok = _fine_tune(tmp_path / "ok", main)
    record = variant.check_lineage(ok, main)
    assert record["params"]["imgsz"] == 224 and record["seconds"] == 61.5 and record["stages"] == 1
    # a second stage continued from the first: still a descendant, two stages, their time summed
    first = json.loads((tmp_path / "ok" / "training.json").read_text())
    second = _fine_tune(tmp_path / "second", first["sha256"], b"stage two", parent_record=first)
    record = variant.check_lineage(second, main)
    assert (record["stages"], record["seconds_total"], record["epochs_total"]) == (2, 123.0, 6)
    # a nested record that does not describe the parent it sits under is refused
    forged = _fine_tune(tmp_path / "forged", first["sha256"], b"stage two'", parent_record=dict(first, sha256="c" * 64))
    with pytest.raises(ValueError, match="describes"):
        variant.check_lineage(forged, main)
    # a chain that never reaches the main model's checkpoint is refused
    stray = _fine_tune(tmp_path / "stray", "d" * 64, b"stray", parent_record=None)
    with pytest.raises(ValueError, match="not a descendant"):
        variant.check_lineage(stray, main)
    # a checkpoint fine-tuned from another parent is refused
    other = _fine_tune(tmp_path / "other", "b" * 64)
    with pytest.raises(ValueError, match="not a descendant"):
        variant.check_lineage(other, main)
    # so is one whose training.json describes another file (it was overwritten), or has none
    ok.write_bytes(b"another checkpoint")
    with pytest.raises(ValueError, match="describes checkpoint"):
        variant.check_lineage(ok, main)
    (tmp_path / "bare").mkdir()
    (tmp_path / "bare" / "best.pt").write_bytes(b"x")
    with pytest.raises(ValueError, match="no training.json"):
        variant.check_lineage(tmp_path / "bare" / "best.pt", main)
    # and one with no parent at all (trained from scratch)
    scratch = _fine_tune(tmp_path / "scratch", main)
    rec = json.loads((tmp_path / "scratch" / "training.json").read_text())
    del rec["continued_from"]
    (tmp_path / "scratch" / "training.json").write_text(json.dumps(rec))
    with pytest.raises(ValueError, match="not a descendant"):
        variant.check_lineage(scratch, main)


def test_a_fine_tuned_variant_is_fine_tuned_at_its_own_size_all_the_way_from_the_main_model(tmp_path):
    main = "a" * 64
    first = _fine_tune(tmp_path / "first", main)
    first_rec = json.loads((tmp_path / "first" / "training.json").read_text())
    second = _fine_tune(tmp_path / "second", first_rec["sha256"], b"stage two", parent_record=first_rec)
    assert variant.check_lineage(second, main, imgsz=224)["stages"] == 2
    with pytest.raises(ValueError, match="stage 1 .* trained at 224, not 256"):
        variant.check_lineage(first, main, imgsz=256)
    # a newer main-size detector in between (the main model fine-tuned again at 320, then that one at 224)
    # descends from this bundle's checkpoint but is not this bundle's detector: refused
    newer = _fine_tune(tmp_path / "newer", main, b"a newer 320 detector")
    newer_rec = json.loads((tmp_path / "newer" / "training.json").read_text())
    newer_rec["params"]["imgsz"] = 320
    (tmp_path / "newer" / "training.json").write_text(json.dumps(newer_rec))
    on_top = _fine_tune(tmp_path / "on-top", newer_rec["sha256"], b"its 224 fine-tune", parent_record=newer_rec)
    assert variant.check_lineage(on_top, main)["stages"] == 2  # without a size, only the ancestry is checked
    with pytest.raises(ValueError, match="stage 2 .* trained at 320, not 224"):
        variant.check_lineage(on_top, main, imgsz=224)
    # a stage that does not record its size cannot show it
    rec = json.loads((tmp_path / "first" / "training.json").read_text())
    del rec["params"]["imgsz"]
    (tmp_path / "first" / "training.json").write_text(json.dumps(rec))
    with pytest.raises(ValueError, match="unrecorded size"):
        variant.check_lineage(first, main, imgsz=224)


def _recovered(folder: Path, onnx_file: str, onnx_sha256: str) -> dict:
    """Weights `recover` wrote from an ONNX file, and the record it writes beside them."""
    folder.mkdir()
    (folder / "recovered.pt").write_bytes(f"weights recovered from {onnx_file}".encode())
    return {"params": {"epochs": 0}, "epochs_run": 0, "seconds": 0.0,
            "sha256": bundle.sha256_file(folder / "recovered.pt"),
            "recovered_from_onnx": {"file": onnx_file, "sha256": onnx_sha256}}


def test_a_fine_tune_of_weights_recovered_from_the_main_model_descends_from_it(tmp_path):
    main_ckpt, model = "a" * 64, "e" * 64
    root = _recovered(tmp_path / "recovered", "model.onnx", model)
    tuned = _fine_tune(tmp_path / "tuned", root["sha256"], parent_record=root)
    record = variant.check_lineage(tuned, main_ckpt, model)
    assert (record["root"], record["stages"], record["seconds_total"]) == ("model.onnx", 1, 61.5)
    # recovered from another model.onnx, or no model digest to compare with: not a descendant
    with pytest.raises(ValueError, match="not a descendant"):
        variant.check_lineage(tuned, main_ckpt, "f" * 64)
    with pytest.raises(ValueError, match="not a descendant"):
        variant.check_lineage(tuned, main_ckpt)
    # the recovered record must describe the checkpoint the fine-tune continued from
    forged = _fine_tune(tmp_path / "forged", "c" * 64, parent_record=root)
    with pytest.raises(ValueError, match="describes"):
        variant.check_lineage(forged, main_ckpt, model)


def test_a_fine_tune_of_weights_recovered_from_a_shipped_fine_tuned_variant_continues_it(tmp_path):
    main_ckpt, model, fast = "a" * 64, "e" * 64, "9" * 64
    shipped = {"name": "fast-224", "file": "model-224.onnx", "sha256": fast, "input": {"width": 224, "height": 224},
               "metrics": {"variant_of": {"model_sha256": model, "fine_tuned": True,
                                          "fine_tune": {"stages": 2, "seconds_total": 4110.2, "epochs_total": 70}}}}
    doc = {"model": {"sha256": model}, "variants": [shipped]}
    roots = variant.shipped_variant_roots(doc, 224)
    assert list(roots) == [fast]
    root = _recovered(tmp_path / "recovered-224", "model-224.onnx", fast)
    tuned = _fine_tune(tmp_path / "tuned", root["sha256"], parent_record=root)
    record = variant.check_lineage(tuned, main_ckpt, model, imgsz=224, variant_roots=roots)
    assert record["root"] == "variant" and record["root_variant"]["name"] == "fast-224"
    # the shipped variant's own stages and time are counted in
    assert (record["stages"], record["seconds_total"], record["epochs_total"]) == (3, 4171.7, 73)
    assert "fast-224 variant" in variant.lineage_root_text(record, doc)
    # without the bundle's variants to compare with, the chain reaches nothing of this bundle
    with pytest.raises(ValueError, match="not a descendant"):
        variant.check_lineage(tuned, main_ckpt, model, imgsz=224)
    # a variant that is not a fine-tune of this main model, or of another size, is no root
    for other in ({**shipped, "metrics": {"variant_of": {"model_sha256": "f" * 64, "fine_tuned": True}}},
                  {**shipped, "metrics": {"variant_of": {"model_sha256": model}}},
                  {**shipped, "input": {"width": 256, "height": 256}}):
        roots = variant.shipped_variant_roots({"model": {"sha256": model}, "variants": [other]}, 224)
        with pytest.raises(ValueError, match="not a descendant"):
            variant.check_lineage(tuned, main_ckpt, model, imgsz=224, variant_roots=roots)


def test_the_report_says_a_fine_tuned_variant_is_fine_tuned(src, tmp_path):
    doc = json.loads((src / "manifest.json").read_text())
    f, v = _entry(tmp_path)
    assert "the same detector exported at 224×224" in variant.report_section(doc, v)
    v["metrics"]["variant_of"] = {"fine_tuned": True, "parent_checkpoint_sha256": "a" * 64}
    text = variant.report_section(doc, v)
    assert "fine-tuned at 224×224 from the main model's weights" in text and "same detector" not in text


def test_the_exported_graph_must_match_the_entry():
    main = {"model": {"output": {"name": "output0"}}}
    io = {"name": "images", "dtype": "float32", "width": 224, "height": 224, "outputs": ["output0"]}
    variant.check_entry_io(io, main, 224)
    with pytest.raises(ValueError, match="224x224"):
        variant.check_entry_io(io, main, 256)
    with pytest.raises(ValueError, match="output0"):
        variant.check_entry_io(dict(io, outputs=["out"]), main, 224)
    with pytest.raises(ValueError, match="float32"):
        variant.check_entry_io(dict(io, dtype="uint8"), main, 224)


def test_graph_io_and_the_same_detector_check_on_a_shipped_model():
    pytest.importorskip("onnxruntime")
    m = MODELS / "aurora" / "model.onnx"
    io = variant.graph_io(m)
    assert io == {"name": "images", "dtype": "float32", "width": 320, "height": 320, "outputs": ["output0"]}
    assert variant.max_diff(m, m) == {"boxes_px": 0.0, "scores": 0.0}
    d = variant.max_diff(m, MODELS / "northwind" / "model.onnx")  # another detector: far apart
    assert d["scores"] > variant.SAME_DETECTOR_TOL["scores"]


def test_recovered_weights_export_to_the_same_detector_at_its_size_and_to_a_smaller_input(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("yolov5")
    from hallmark_models import export, recover

    m = MODELS / "northwind" / "model.onnx"
    recover.recover(m, tmp_path / "rec")
    same = variant.max_diff(export.export(tmp_path / "rec" / "recovered.pt", 320, tmp_path / "a.onnx"), m)
    assert all(same[k] <= tol for k, tol in variant.SAME_DETECTOR_TOL.items()), same
    small = export.export(tmp_path / "rec" / "recovered.pt", 224, tmp_path / "b.onnx")
    io = variant.graph_io(small)
    variant.check_entry_io(io, json.loads((MODELS / "northwind" / "manifest.json").read_text()), 224)
