"""The uint8 NHWC variant (`hallmark_models.prologue`): the main model behind Cast -> Div 255 -> Transpose,
added to a signed copy of a bundle. Light venv: onnx and onnxruntime, no torch."""

import json
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from conftest import signed_bundle  # noqa: E402
from hallmark_models import bundle, prologue, variant  # noqa: E402

MODELS = Path(__file__).resolve().parents[2]
AURORA = MODELS / "aurora" / "model.onnx"
MAIN_METRICS = {"verdict_accuracy": 0.98, "genuine_called_counterfeit": 0.0, "counterfeit_called_genuine": 0.0,
                "counterfeit_called_counterfeit": 0.5, "empty_scenes": 14, "empty_scenes_with_false_alarm": 0,
                "product_free_photos": {"photos": 22, "with_false_alarm": 0}, "map50": 0.9,
                "inference_ms_median_ort_2_threads": 6.0,
                "validation": {"verdict_accuracy": 0.99, "genuine_called_counterfeit": 0.0,
                               "counterfeit_called_genuine": 0.0, "caps_met": True}}
TH = {"confidence": 0.25, "iou": 0.45, "genuine": 0.84, "counterfeit": 0.95, "margin": 0.15}


@pytest.fixture(scope="module")
def u8(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("prologue") / "model-u8.onnx"
    prologue.add_prologue(AURORA, out)
    return out


def test_the_graph_takes_uint8_nhwc_and_keeps_the_model(u8):
    m, main = onnx.load(str(u8)), onnx.load(str(AURORA))
    [inp] = m.graph.input
    assert inp.name == "images_u8" and inp.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert [d.dim_value for d in inp.type.tensor_type.shape.dim] == [1, 320, 320, 3]
    assert variant.graph_io(u8) == {"name": "images_u8", "dtype": "uint8", "width": 320, "height": 320,
                                    "outputs": ["output0"]}
    assert [n.op_type for n in m.graph.node[:3]] == ["Cast", "Div", "Transpose"]
    assert list(m.graph.node[2].attribute[0].ints) == [0, 3, 1, 2] and m.graph.node[2].output == ["images"]
    assert m.opset_import == main.opset_import
    assert m.graph.output == main.graph.output
    assert len(m.graph.node) == len(main.graph.node) + 3
    assert len(m.graph.initializer) == len(main.graph.initializer) + 1
    assert abs(u8.stat().st_size - AURORA.stat().st_size) < 4096


def test_the_outputs_are_the_main_models(u8):
    d = prologue.parity(AURORA, u8)
    assert d["scores"] <= 1e-4 and d["boxes_px"] <= 1e-3
    # Div gives the main model's input bit for bit, so the outputs are identical (a Mul by 1/255 is not).
    assert d == {"boxes_px": 0.0, "scores": 0.0}


def test_the_prologue_divides_as_the_agent_does_every_byte_bit_for_bit(u8, tmp_path):
    import onnxruntime as ort
    from onnx import helper

    # The float tensor the prologue feeds the detector, made a graph output.
    m = onnx.load(str(u8))
    m.graph.output.append(helper.make_tensor_value_info("images", onnx.TensorProto.FLOAT, [1, 3, 320, 320]))
    onnx.save(m, str(tmp_path / "probe.onnx"))
    s = ort.InferenceSession(str(tmp_path / "probe.onnx"), providers=["CPUExecutionProvider"])
    x = (np.arange(320 * 320 * 3) % 256).astype(np.uint8).reshape(1, 320, 320, 3)
    got = s.run(["images"], {"images_u8": x})[0]
    agent = x.astype(np.float32).transpose(0, 3, 1, 2) / np.float32(255.0)  # `v as f32 / 255.0`
    assert got.dtype == np.float32 and np.array_equal(got.view(np.uint32), agent.view(np.uint32))
    # The premise: multiplying by 1/255 is not the same in float32 for some bytes.
    v = np.arange(256).astype(np.float32)
    assert (v * np.float32(1 / 255) != v / np.float32(255)).any()


def test_a_graph_that_already_has_the_name_or_another_input_is_refused(u8, tmp_path):
    with pytest.raises(ValueError, match="already"):
        prologue.add_prologue(AURORA, tmp_path / "x.onnx", input_name="output0")
    with pytest.raises(ValueError, match="not float32"):
        prologue.add_prologue(u8, tmp_path / "y.onnx")
    assert not (tmp_path / "x.onnx").exists() and not (tmp_path / "y.onnx").exists()


def _src(tmp_path, picture=True):
    files = {"report.md": "# aurora — model revision 4\n\nmain figures\n".encode()}
    if picture:
        files["tradeoff.png"] = b"main png"
    out, _ = signed_bundle(tmp_path, "src", AURORA.read_bytes(), revision=4, thresholds=TH, metrics=MAIN_METRICS,
                           files=files)
    return out


def test_build_adds_a_signed_uint8_variant_with_the_main_thresholds(tmp_path):
    src = _src(tmp_path)
    before = {p.name: p.read_bytes() for p in src.iterdir() if p.is_file()}
    out = tmp_path / "out"
    doc, diff = prologue.build(src, out, tmp_path / "k.pem", command="python -m hallmark_models.prologue")
    got = bundle.verify(out, bundle.load_public(tmp_path / "k.pub.pem"))
    assert got == doc and doc["revision"] == 5
    old = json.loads(before["manifest.json"])
    for k in ("model", "thresholds", "metrics", "classes", "gs1_prefixes", "brand"):
        assert got[k] == old[k], k
    [v] = got["variants"]
    assert v["name"] == "u8" and v["file"] == "model-u8.onnx" and v["precision"] == "fp32"
    assert v["input"] == {"name": "images_u8", "dtype": "uint8", "width": 320, "height": 320}
    assert v["thresholds"] == old["thresholds"] == TH
    assert v["sha256"] == bundle.sha256_file(out / "model-u8.onnx")
    assert variant.graph_io(out / "model-u8.onnx")["dtype"] == "uint8"
    vo = v["metrics"].pop("variant_of")
    assert vo["model_sha256"] == old["model"]["sha256"] and vo["prologue"] == prologue.PROLOGUE
    assert vo["max_abs_diff_vs_model"] == diff == {"boxes_px": 0.0, "scores": 0.0}
    # The main model's figures, less its own inference timing (measured on model.onnx, not on this file).
    assert v["metrics"] == {k: x for k, x in MAIN_METRICS.items() if k != "inference_ms_median_ort_2_threads"}
    assert (out / "model.onnx").read_bytes() == before["model.onnx"]
    assert (out / "tradeoff-u8.png").read_bytes() == b"main png"
    report = (out / "report.md").read_text()
    assert report.startswith("# aurora — model revision 4\n\nmain figures\n")
    assert "## Variant `u8` (revision 5)" in report and "uint8 NHWC prologue" in report
    assert "exported at" not in report and "![trade-off, u8](tradeoff-u8.png)" in report
    assert "| test accuracy | 98.0% | 98.0% |" in report
    assert {p.name: p.read_bytes() for p in src.iterdir() if p.is_file()} == before


def test_without_a_main_picture_the_report_embeds_none(tmp_path):
    src = _src(tmp_path, picture=False)
    prologue.build(src, tmp_path / "out", tmp_path / "k.pem")
    assert not (tmp_path / "out" / "tradeoff-u8.png").exists()
    assert "tradeoff-u8.png" not in (tmp_path / "out" / "report.md").read_text()


def test_a_non_empty_out_or_an_untrusted_bundle_is_refused(tmp_path):
    src = _src(tmp_path)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("x")
    with pytest.raises(FileExistsError):
        prologue.build(src, tmp_path / "busy", tmp_path / "k.pem")
    with pytest.raises(SystemExit):
        prologue.main(["--bundle", str(src), "--out", str(tmp_path / "busy"), "--key", str(tmp_path / "k.pem")])
    assert sorted(p.name for p in (tmp_path / "busy").iterdir()) == ["x"]
    bundle.keygen(tmp_path / "other.pem", tmp_path / "other.pub.pem")
    with pytest.raises(bundle.BundleError):
        prologue.build(src, tmp_path / "out", tmp_path / "other.pem")
    assert not (tmp_path / "out").exists()
