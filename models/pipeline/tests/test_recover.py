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
