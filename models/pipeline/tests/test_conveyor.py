"""Conveyor recordings (`hallmark_models.conveyor`): a short recording's truth holds what a replay test
relies on — every pack enters and leaves, moves one way along the belt, stays inside the frame, is drawn
where its box says, and the per-frame labels are that truth — and so do the committed fixtures
(tests/fixtures/conveyor/). The torch-free detector used by `--check` reproduces the yolov5 reference
(tests/golden). Light environment only: numpy, pillow, zxing-cpp, onnxruntime."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hallmark_models import brands, conveyor

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "tests" / "fixtures" / "conveyor"


def _iou(a, b):
    lt, rb = np.maximum(a[:2], b[:2]), np.minimum(a[2:], b[2:])
    inter = float(np.prod(np.clip(rb - lt, 0, None)))
    return inter / (np.prod(np.subtract(a[2:], a[:2])) + np.prod(np.subtract(b[2:], b[:2])) - inter)


def check_recording(folder: Path) -> dict:
    """Asserts the invariants of a recording folder; returns its truth."""
    truth = json.loads((folder / "truth.json").read_text())
    brand = brands.BRANDS[truth["brand"]]
    classes = brand.classes()
    n, w, h = truth["frames"], truth["width"], truth["height"]
    axis = "xy".index(truth["belt"]["axis"])
    direction = truth["belt"]["direction"]
    assert (w, h) == (960, 720) and direction in (1, -1)
    assert sorted(p.name for p in folder.glob("frame-*.jpg")) == [f"frame-{f:04d}.jpg" for f in range(n)]
    with Image.open(folder / "frame-0000.jpg") as im:
        assert im.size == (w, h) and im.format == "JPEG"

    for p in truth["packs"]:
        if p["role"] == "distractor":
            assert p["class_id"] is None and p["class"] is None
        else:
            assert classes[p["class_id"]]["name"] == p["class"] and classes[p["class_id"]]["role"] == p["role"]
        frames = sorted(int(f) for f in p["boxes"])
        # Enters after the first frame, leaves before the last, seen in one unbroken run of frames.
        assert 0 < p["first_frame"] == frames[0] and frames[-1] == p["last_frame"] < n - 1, p["id"]
        assert frames == list(range(frames[0], frames[-1] + 1)), p["id"]
        assert len(frames) >= conveyor.MIN_VIEW_FRAMES, p["id"]
        assert not set(p["edge_boxes"]) & set(p["boxes"])
        centres = []
        for f in frames:
            x1, y1, x2, y2 = p["boxes"][str(f)]
            assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h, (p["id"], f)
            centres.append(((x1 + x2) / 2, (y1 + y2) / 2)[axis])
        # Moves one way along the belt, at least a few pixels per frame.
        steps = np.diff(centres) * direction
        assert (steps > 2).all(), (p["id"], centres)

    # Packs in view at once do not overlap.
    for f in range(n):
        boxes = [p["boxes"][str(f)] for p in truth["packs"] if str(f) in p["boxes"]]
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                assert _iou(boxes[i], boxes[j]) < 0.05, f

    # The labels are the truth: the brand's packs in view, never a distractor.
    for f in range(n):
        rows = sorted(tuple(map(float, line.split())) for line in (folder / f"frame-{f:04d}.txt").read_text().splitlines())
        want = []
        for p in truth["packs"]:
            if p["class_id"] is not None and str(f) in p["boxes"]:
                x1, y1, x2, y2 = p["boxes"][str(f)]
                want.append((p["class_id"], (x1 + x2) / 2 / w, (y1 + y2) / 2 / h, (x2 - x1) / w, (y2 - y1) / h))
        assert len(rows) == len(want), f
        for got, exp in zip(rows, sorted(want)):
            assert got[0] == exp[0] and np.allclose(got[1:], exp[1:], atol=1e-5), f
    return truth


@pytest.mark.parametrize("brand_key", sorted(brands.BRANDS))
def test_short_recording_truth(tmp_path, brand_key):
    truth = conveyor.write_recording(tmp_path, brands.BRANDS[brand_key], frames=12, seed=99, packs=2,
                                     counterfeits=1, distractors=0, quality=80)
    assert truth == check_recording(tmp_path)
    assert [p["role"] for p in truth["packs"]].count("counterfeit") == 1
    assert len(truth["packs"]) == 2


def test_distractors_are_drawn_but_never_labelled(tmp_path):
    truth = conveyor.write_recording(tmp_path, brands.NORTHWIND, frames=16, seed=5, packs=1, counterfeits=0,
                                     distractors=1, quality=80)
    check_recording(tmp_path)
    assert sorted(p["role"] for p in truth["packs"]) == ["distractor", "genuine"]
    d = next(p for p in truth["packs"] if p["role"] == "distractor")
    assert d["boxes"]  # it crosses the view like any pack
    for f, box in d["boxes"].items():
        for line in (tmp_path / f"frame-{int(f):04d}.txt").read_text().splitlines():
            _, cx, cy, bw, bh = map(float, line.split())
            label = [(cx - bw / 2) * 960, (cy - bh / 2) * 720, (cx + bw / 2) * 960, (cy + bh / 2) * 720]
            assert _iou(label, box) < 0.05, f


def test_packs_are_drawn_where_their_boxes_are():
    """A frame with the packs against the same frame without them: the pixels change inside each box."""
    rng = np.random.default_rng(3)
    background, belt, packs = conveyor.plan(rng, brands.AURORA, 16, 2, 1, 1)
    cam = conveyor.camera(rng, belt)
    seen = 0
    for f in range(16):
        img, drawn = conveyor.render_frame(background, belt, packs, cam, f, np.random.default_rng(0))
        empty, none = conveyor.render_frame(background, belt, [], cam, f, np.random.default_rng(0))
        assert none == {}
        diff = np.abs(np.asarray(img, dtype=np.int16) - np.asarray(empty, dtype=np.int16)).max(axis=2)
        changed = diff > 25
        covered = np.zeros_like(changed)
        for share, (x1, y1, x2, y2) in drawn.values():
            covered[int(y1):int(np.ceil(y2)), int(x1):int(np.ceil(x2))] = True
            if share >= conveyor.IN_VIEW:
                assert changed[int(y1):int(y2), int(x1):int(x2)].mean() > 0.3
                seen += 1
        # Nothing changes outside the boxes but a pack's shadow and blur at its edge.
        assert changed[~covered].mean() < 0.01
    assert seen >= 2 * conveyor.MIN_VIEW_FRAMES


def test_visible_share_clips_to_the_frame():
    square = np.array([[-50.0, 100], [50, 100], [50, 200], [-50, 200]])
    assert conveyor.visible_share(square) == pytest.approx(0.5)
    assert conveyor.visible_share(square + [500, 0]) == pytest.approx(1.0)
    assert conveyor.visible_share(square - [100, 0]) == 0.0
    corner = np.array([[900.0, 680], [1000, 680], [1000, 780], [900, 780]])  # 60 x 40 of it inside
    assert conveyor.visible_share(corner) == pytest.approx(0.24)
    assert conveyor.box_of(corner) == [900.0, 680.0, 960.0, 720.0]


def test_too_many_packs_for_the_frames_is_refused():
    with pytest.raises(ValueError, match="do not fit"):
        conveyor.plan(np.random.default_rng(0), brands.NORTHWIND, 12, 6, 1, 2)


@pytest.mark.parametrize("brand_key", ["northwind", "aurora"])
def test_committed_fixture(brand_key):
    truth = check_recording(FIXTURES / brand_key)
    roles = [p["role"] for p in truth["packs"]]
    genuine = {p["class"] for p in truth["packs"] if p["role"] == "genuine"}
    assert truth["frames"] >= 50 and 5 <= len(roles) - roles.count("distractor") <= 6
    assert roles.count("counterfeit") >= 1 and len(genuine) >= 3 and 1 <= roles.count("distractor") <= 2
    for p in truth["packs"]:
        assert 8 <= len(p["boxes"]) <= 20, p["id"]
    assert max(sum(str(f) in p["boxes"] for p in truth["packs"]) for f in range(truth["frames"])) >= 2
    assert sum(f.stat().st_size for f in (FIXTURES / brand_key).iterdir()) < 3_000_000


@pytest.mark.parametrize("brand_key", ["northwind", "aurora"])
def test_check_detector_reproduces_the_yolov5_reference(brand_key):
    """`conveyor.detect` (numpy letterbox and NMS) against tests/golden, written by the yolov5 package."""
    ort = pytest.importorskip("onnxruntime")
    golden = ROOT / "tests" / "golden" / f"{brand_key}.json"
    model = ROOT / "models" / brand_key / "model.onnx"
    if not golden.exists() or not model.exists():
        pytest.skip("no golden detections or model")
    doc = json.loads(golden.read_text())
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    compared = 0
    for name, ref in doc["images"].items():
        rgb = np.asarray(Image.open(ROOT / "models" / "samples" / brand_key / name).convert("RGB"))
        for conf in doc["confidences"]:
            want = sorted(ref["detections"][conf], key=lambda d: -d["confidence"])
            got = conveyor.detect(session, rgb, float(conf), doc["iou"])
            assert len(got) == len(want), (name, conf)
            for d, g in zip(want, got):
                assert int(g[5]) == d["class"] and abs(g[4] - d["confidence"]) < 0.01, (name, conf)
                assert np.abs(g[:4] - d["box"]).max() < 1.0, (name, conf)
                compared += 1
    assert compared > 0
