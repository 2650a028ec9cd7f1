"""The torch-free detector stages (letterbox, resize, decode, NMS) on values, and the shipped model run
through them on a sample scene."""

from pathlib import Path

import numpy as np
import pytest

from hallmark_models import detect

MODELS = Path(__file__).resolve().parents[2]


def test_letterbox_geometry_matches_the_reference():
    assert detect.letterbox_geometry(960, 720, 320, 320) == (1 / 3, 320, 240, 0, 40)
    gain, rw, rh, left, top = detect.letterbox_geometry(640, 427, 320, 320)
    assert (rw, rh) == (320, 214) and (left, top) == (0, 53)  # round(53.0 - 0.1) = 53


def test_bilinear_halving_averages_two_by_two_blocks_and_keeps_flat_images_flat():
    img = np.zeros((4, 4, 3), np.uint8)
    img[:2, :2] = 100
    img[2:, 2:] = 200
    out = detect.resize_bilinear(img, 2, 2)
    assert out[..., 0].tolist() == [[100, 0], [0, 200]]
    flat = np.full((37, 53, 3), 77, np.uint8)
    assert (detect.resize_bilinear(flat, 20, 11) == 77).all()


def test_nms_is_per_class_and_keeps_overlap_at_the_threshold():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 9], [0, 0, 10, 10]], np.float32)
    kept = detect.nms(boxes, np.array([0.9, 0.8, 0.7], np.float32), 0.9)
    assert kept.tolist() == [0, 1]  # IoU 0.9 is not above 0.9
    pred = np.zeros((3, 7), np.float32)
    pred[:, :4] = [[50, 50, 20, 20], [51, 50, 20, 20], [50, 51, 20, 20]]
    pred[:, 4] = [0.9, 0.8, 0.3]
    pred[:, 5:] = [[1, 0], [0, 1], [1, 0]]
    det = detect.postprocess(pred, 0.25, 0.45)
    assert det[:, 5].tolist() == [0, 1]  # the third overlaps the first, same class: suppressed
    assert det[0, :4].tolist() == [40, 40, 60, 60]
    pred[0, 4] = 0.25  # objectness not above the filter: dropped before scoring
    assert detect.postprocess(pred, 0.25, 0.45)[:, 4].tolist() == pytest.approx([0.8, 0.3])


def test_shipped_model_finds_the_labelled_pack_of_a_sample():
    pytest.importorskip("onnxruntime")
    from hallmark_models import verdicts as V
    from hallmark_models.evaluation import yolo_labels

    image = MODELS / "samples" / "northwind" / "northwind-test-0000.jpg"
    rgb = detect.load_rgb(image)
    det = detect.Detector(MODELS / "northwind" / "model.onnx").detect(rgb, 0.25, 0.45)
    labels = yolo_labels(image.with_suffix(".txt"), rgb.shape[1], rgb.shape[0])
    items = V.group_items(det.tolist(), ["genuine", "counterfeit"] * 3)
    for (cls, *box), j in zip(labels, V.match_packs(labels, items)):
        assert j >= 0
        assert items[j].anchor_class == int(cls)
