"""The quarter-turns variant (`hallmark_models.turns`): the main model on the frame and its three quarter
turns in one graph, boxes turned back. Light venv: onnx and onnxruntime, no torch."""

from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from hallmark_models import turns  # noqa: E402

MODELS = Path(__file__).resolve().parents[2]
AURORA = MODELS / "aurora" / "model.onnx"


@pytest.fixture(scope="module")
def graph(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("turns") / "model-quarter-turns.onnx"
    turns.add_turns(AURORA, out)
    return out


def run(path: Path, x: np.ndarray) -> np.ndarray:
    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return s.run(None, {s.get_inputs()[0].name: np.ascontiguousarray(x)})[0]


def test_a_box_found_in_a_turned_frame_is_turned_back_onto_the_pack():
    frame = np.zeros((64, 64), np.uint8)
    frame[5:15, 20:44] = 1  # a pack: x 20..44, y 5..15, centre (32, 10), 24 x 10
    for k in range(4):
        ys, xs = np.nonzero(np.rot90(frame, k))
        x1, y1, x2, y2 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
        row = np.array([[(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1, 0.9, 0.1]])
        assert turns.turned_back(row, k, 64)[0].tolist() == [32, 10, 24, 10, 0.9, 0.1], k


def test_the_graph_is_the_main_model_on_the_four_turned_frames(graph):
    main_out = onnx.load(str(AURORA)).graph.output[0]
    s = ort.InferenceSession(str(graph), providers=["CPUExecutionProvider"])
    (out,) = s.get_outputs()
    n = main_out.type.tensor_type.shape.dim[1].dim_value
    assert out.name == main_out.name and out.shape == [1, 4 * n, 11]
    assert s.get_inputs()[0].shape == [1, 3, 320, 320]
    diff = turns.parity(AURORA, graph)
    assert diff["boxes_px"] <= turns.PARITY_TOL["boxes_px"] and diff["scores"] <= turns.PARITY_TOL["scores"]
    # Shared weights: not four copies of them.
    assert graph.stat().st_size < 1.2 * AURORA.stat().st_size


def test_a_turned_frame_gives_the_same_rows_in_another_order(graph):
    # What makes the variant indifferent to how a pack is held: the passes of a turned frame are the
    # passes of the frame, one turn along.
    x = np.random.default_rng(1).random((1, 3, 320, 320), dtype=np.float32)
    rows = run(graph, x)[0]
    n = rows.shape[0] // 4
    turned = turns.turned_back(run(graph, np.rot90(x, 1, axes=(2, 3)))[0], 1, 320)
    for k in range(4):
        want = rows[((k + 1) % 4) * n:((k + 1) % 4 + 1) * n]
        np.testing.assert_allclose(turned[k * n:(k + 1) * n], want, atol=1e-3)


def test_a_non_square_input_is_refused(tmp_path):
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 32, 64])
    y = helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 3, 32, 64])
    m = helper.make_model(helper.make_graph([helper.make_node("Identity", ["images"], ["output0"])], "g", [x], [y]))
    onnx.save(m, str(tmp_path / "wide.onnx"))
    with pytest.raises(ValueError, match="square"):
        turns.add_turns(tmp_path / "wide.onnx", tmp_path / "out.onnx")
    with pytest.raises(ValueError, match="already has turns"):
        turns.add_turns(AURORA, tmp_path / "once.onnx")
        turns.add_turns(tmp_path / "once.onnx", tmp_path / "twice.onnx")


def test_a_dry_run_writes_the_graph_and_its_rule_and_signs_nothing(tmp_path, monkeypatch, capsys):
    # No key anywhere: the dry run builds the graph, checks it against four turned passes, evaluates it as
    # a release would (stubbed here: the figures are the release's business) and prints the --rule for score.
    from hallmark_models import evaluation

    seen = {}

    def evaluate(brand, data, composite, bundle_dir=None, model=None):
        seen.update(brand=brand, model=model)
        return {"choice": {"confidence": 0.6, "genuine": 0.7, "counterfeit": 0.9, "margin": 0.15, "feasible": True,
                           "floors": []},
                "val": {"counterfeit_items": 3, "counterfeit_called_counterfeit": 0.5}}

    monkeypatch.setattr(evaluation, "evaluate_brand", evaluate)
    out = tmp_path / "out"
    turns.main(["--bundle", str(MODELS / "aurora"), "--data", str(tmp_path), "--out", str(out), "--dry-run",
                "--key", str(tmp_path / "no-such.key")])
    assert sorted(p.name for p in out.iterdir()) == ["model-quarter-turns.onnx"]
    assert seen == {"brand": "aurora", "model": out / "model-quarter-turns.onnx"}
    assert "--rule quarter-turns=0.6,0.7,0.9,0.15" in capsys.readouterr().out
