"""Recovering a trainable checkpoint from a shipped ONNX export (training venv only: torch, yolov5, onnx)."""

from pathlib import Path

import numpy as np
import pytest

MODELS = Path(__file__).resolve().parents[2]


def test_anchor_grids_give_the_anchors_finest_level_first():
    from hallmark_models.recover import anchors_from

    def grid(n, anchors):
        g = np.zeros((1, 3, n, n, 2), np.float32)
        g[0, :, :, :, :] = np.array(anchors, np.float32).reshape(3, 1, 1, 2)
        return g

    arrays = {"a": grid(10, [[116, 90], [156, 198], [373, 326]]), "b": grid(40, [[10, 13], [16, 30], [33, 23]]),
              "c": grid(20, [[30, 61], [62, 45], [59, 119]]), "w": np.zeros((16, 3, 3, 3), np.float32)}
    assert anchors_from(arrays) == [[10, 13, 16, 30, 33, 23], [30, 61, 62, 45, 59, 119], [116, 90, 156, 198, 373, 326]]


def test_recovered_model_computes_what_the_onnx_model_computes(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("onnx")
    pytest.importorskip("yolov5")
    from hallmark_models.recover import recover

    report = recover(MODELS / "northwind" / "model.onnx", tmp_path)
    assert report["nc"] == 6 and report["modules_loaded"] == 60
    assert report["max_abs_diff_vs_onnx"]["scores"] < 1e-4
    assert report["max_abs_diff_vs_onnx"]["boxes_px"] < 1e-2
    assert (tmp_path / "recovered.pt").exists() and (tmp_path / "model.yaml").exists()
    import json

    from hallmark_models import train

    record = json.loads((tmp_path / "training.json").read_text())
    assert record["sha256"] == train.sha256_file(tmp_path / "recovered.pt")
    assert record["recovered_from_onnx"]["sha256"] == train.sha256_file(MODELS / "northwind" / "model.onnx")


def test_calibration_images_spread_evenly_over_a_folder_and_refuse_an_empty_one(tmp_path):
    from hallmark_models.recover import calibration_images

    for i in range(10):
        (tmp_path / f"{i:02d}.jpg").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("not an image")
    assert [p.name for p in calibration_images(tmp_path, 3)] == ["00.jpg", "03.jpg", "06.jpg"]
    assert len(calibration_images(tmp_path, 50)) == 10
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no images"):
        calibration_images(empty, 3)


def test_calibrated_batchnorm_trains_the_shipped_model_and_keeps_what_it_computes(tmp_path):
    """Recovered as the identity, BatchNorm in train mode normalises the fused outputs by the batch's
    statistics and the model that trains is another one; calibrated, train mode stays near eval mode."""
    pytest.importorskip("torch")
    pytest.importorskip("onnx")
    pytest.importorskip("yolov5")
    import json

    from hallmark_models.recover import recover

    report = recover(MODELS / "northwind" / "model.onnx", tmp_path, calibrate_on=MODELS / "samples" / "northwind")
    cal = report["batchnorm_calibration"]
    assert cal["images"] == 7 and cal["size"] == 320
    assert cal["train_mode_objectness_gap_before"] > 0.1
    assert cal["train_mode_objectness_gap_after"] < cal["train_mode_objectness_gap_before"] / 10
    assert cal["max_abs_diff_vs_onnx"]["scores"] < 1e-4 and cal["max_abs_diff_vs_onnx"]["boxes_px"] < 1e-2
    record = json.loads((tmp_path / "training.json").read_text())
    assert record["batchnorm_calibration"] == cal
