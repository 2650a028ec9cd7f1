"""Training tooling that needs no torch: hyperparameter layering and the record of each stage."""

import json

from hallmark_models import pipeline, train


def write(path, doc):
    path.write_text(json.dumps(doc))
    return path


def test_brand_override_equal_to_the_default_is_kept(tmp_path):
    # The pipeline's file picks AdamW; a brand asking for SGD (the built-in default) must get SGD.
    write(tmp_path / "hyperparameters.json", {"optimizer": "AdamW", "lr0": "0.001", "cls": "2.0"})
    write(tmp_path / "hyperparameters.acme.json", {"optimizer": "SGD", "lr0": "0.0", "cls": "0.5"})
    p = train.brand_hyperparameters("acme", tmp_path)
    assert (p["optimizer"], p["lr0"], p["cls"]) == ("SGD", 0.0, 0.5)


def test_brand_file_changes_only_what_it_names(tmp_path):
    write(tmp_path / "hyperparameters.json", {"optimizer": "AdamW", "epochs": "100"})
    write(tmp_path / "hyperparameters.acme.json", {"epochs": 50})
    p = train.brand_hyperparameters("acme", tmp_path)
    assert (p["optimizer"], p["epochs"], p["imgsz"]) == ("AdamW", 50, train.DEFAULTS["imgsz"])
    assert train.brand_hyperparameters("other", tmp_path)["epochs"] == 100


def test_each_stage_records_the_checkpoint_it_continued_from(tmp_path):
    s1, s2 = tmp_path / "s1", tmp_path / "s2"
    s1.mkdir()
    s2.mkdir()
    (s1 / "best.pt").write_bytes(b"stage one weights")
    first = train.stage_record({**train.DEFAULTS, "optimizer": "SGD"}, s1 / "best.pt", "0", 89, 420, ["a"])
    assert "continued_from" not in first
    (s1 / "training.json").write_text(json.dumps(first))
    (s2 / "best.pt").write_bytes(b"stage two weights")
    second = train.stage_record({**train.DEFAULTS, "weights": str(s1 / "best.pt"), "optimizer": "AdamW"},
                                s2 / "best.pt", "cpu", 23, 800, ["a"])
    assert second["continued_from"]["sha256"] == train.sha256_file(s1 / "best.pt") == first["sha256"]
    assert second["sha256"] == train.sha256_file(s2 / "best.pt")
    (s2 / "training.json").write_text(json.dumps(second))
    summary = pipeline.training_summary(s2 / "best.pt", 0)
    assert summary["continued_from"] == "best.pt"
    assert summary["continued_from_sha256"] == first["sha256"]
    assert summary["optimizer"] == "AdamW" and summary["device"] == "cpu"
    assert [s["optimizer"] for s in summary["earlier_stages"]] == ["SGD"]
    assert summary["earlier_stages"][0]["sha256"] == first["sha256"]


def test_a_parent_record_for_other_weights_is_not_claimed(tmp_path):
    (tmp_path / "best.pt").write_bytes(b"weights now")
    (tmp_path / "training.json").write_text(json.dumps({"sha256": "0" * 64, "params": train.DEFAULTS}))
    out = tmp_path / "next"
    out.mkdir()
    (out / "best.pt").write_bytes(b"x")
    rec = train.stage_record({**train.DEFAULTS, "weights": str(tmp_path / "best.pt")}, out / "best.pt", "cpu", 1, 1, [])
    assert "training" not in rec["continued_from"]


def test_a_picked_stage_says_which_epoch_and_a_calibrated_recovery_says_so(tmp_path):
    root = {"params": {"cfg": "yolov5n.yaml", "epochs": 0, "weights": "", "optimizer": "none"}, "device": "cpu",
            "epochs_run": 0, "seconds": 0.0, "sha256": "a" * 64,
            "recovered_from_onnx": {"file": "model.onnx", "sha256": "b" * 64},
            "batchnorm_calibration": {"images": 256, "size": 320}}
    (tmp_path / "best.pt").write_bytes(b"picked weights")
    record = {"params": {**train.DEFAULTS, "weights": "recovered.pt", "optimizer": "AdamW"}, "device": "cpu",
              "epochs_run": 8, "seconds": 2202.5, "sha256": train.sha256_file(tmp_path / "best.pt"),
              "continued_from": {"file": "recovered.pt", "sha256": "a" * 64, "training": root},
              "picked": {"epoch": 7, "epochs": [{"epoch": e} for e in range(13)]}}
    (tmp_path / "training.json").write_text(json.dumps(record))
    summary = pipeline.training_summary(tmp_path / "best.pt", 0)
    assert (summary["picked_epoch"], summary["epochs_trained"], summary["epochs"]) == (7, 13, 8)
    assert summary["earlier_stages"][0]["batchnorm_calibrated_on_images"] == 256
    assert "picked_epoch" not in summary["earlier_stages"][0]
