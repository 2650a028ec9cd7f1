"""A bytes-in variant: the bundle's main model with a uint8 NHWC prologue in front of it, added to a copy of
the bundle (`variants` in models/BUNDLE.md, `input.dtype` `uint8`) and re-signed. Light venv (onnx,
onnxruntime, numpy): nothing is trained or exported.

    ../../.venv/bin/python -m hallmark_models.prologue --bundle ../aurora --out /tmp/aurora-u8 \\
        [--key ../keys/demo-publisher.key.pem] [--public PUB] [--name u8]

1. `add_prologue`: the main model's graph (float32 NCHW `[1,3,H,W]`, static) behind a new input
   `images_u8`, uint8 NHWC `[1,H,W,3]` — the letterboxed RGB frame as the agent holds it — and three
   nodes: Cast(to float) -> Div by 255 -> Transpose(0,3,1,2), whose output takes the old input's name so
   every node that read it reads the prologue. Weights, opset and output are unchanged. The agent (CPU or
   GPU) then only letterboxes into a uint8 HWC buffer: no float conversion or transpose on the CPU, a
   quarter of the bytes per frame.
   Div, not Mul by 1/255: the agent's float path computes `v as f32 / 255.0`, and float32 `v * (1/255)`
   is one ulp off that for some bytes; Div gives the main model's input bit for bit.
2. `parity`: the two graphs on random uint8 frames (ONNX Runtime, CPU) — the main one on
   `x.astype(float32).transpose(0,3,1,2) / 255` — must agree (`PARITY_TOL`; in practice exactly).
3. Writes to `--out` (new or empty) a copy of the bundle with `model-<name>.onnx`, a `variants` entry with
   the main model's thresholds and figures (the same detector giving the same scores: parity shows it),
   plus `variant_of` (the main model's sha256, the prologue, the parity figures), a copy of the main
   trade-off picture as `tradeoff-<name>.png`, a section in report.md, `revision` + 1, signed with `--key`
   (`variant.add_variant`, which also has the agent verify it). The result must pass `bundle.verify`.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from . import bundle, variants as variant

from .variants import NOT_CARRIED, PROLOGUE, carried, is_prologue  # noqa: F401 (re-exported)
from .variants import prologue_about as about  # noqa: F401

PARITY_TOL = {"boxes_px": 1e-3, "scores": 1e-4}


def add_prologue(src_onnx: Path, dst_onnx: Path, input_name: str = "images_u8") -> None:
    """Writes `dst_onnx`: `src_onnx` (float32 NCHW [1,3,H,W] input, static) taking uint8 NHWC [1,H,W,3]
    as `input_name`, normalised and transposed in the graph (Cast -> Div 255 -> Transpose)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    m = onnx.load(str(src_onnx))
    g = m.graph
    inits = {i.name for i in g.initializer}
    inputs = [i for i in g.input if i.name not in inits]
    if len(inputs) != 1:
        raise ValueError(f"{src_onnx}: expected one graph input, found {[i.name for i in inputs]}")
    old = inputs[0]
    tt = old.type.tensor_type
    if tt.elem_type != TensorProto.FLOAT:
        raise ValueError(f"{src_onnx}: input {old.name} is {TensorProto.DataType.Name(tt.elem_type)}, not float32")
    dims = [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim]
    if len(dims) != 4 or None in dims or dims[0] != 1 or dims[1] != 3:
        raise ValueError(f"{src_onnx}: input {old.name} is not a static NCHW [1,3,H,W]: {dims}")
    _, _, h, w = dims
    names = {n for node in g.node for n in (*node.input, *node.output)} | inits | {i.name for i in g.input} \
        | {o.name for o in g.output}
    if input_name in names:
        raise ValueError(f"{src_onnx}: the name {input_name!r} is already in the graph")
    prefix = "prologue/"
    if any(n.startswith(prefix) for n in names):
        raise ValueError(f"{src_onnx}: already has a prologue")
    scale, as_float, scaled = prefix + "255", prefix + "float", prefix + "scaled"
    nodes = [
        helper.make_node("Cast", [input_name], [as_float], name=prefix + "cast", to=TensorProto.FLOAT),
        helper.make_node("Div", [as_float, scale], [scaled], name=prefix + "div255"),
        # Its output keeps the old input's name: every node that read the input now reads this.
        helper.make_node("Transpose", [scaled], [old.name], name=prefix + "nhwc_to_nchw", perm=[0, 3, 1, 2]),
    ]
    new_input = helper.make_tensor_value_info(input_name, TensorProto.UINT8, [1, h, w, 3])
    g.initializer.append(numpy_helper.from_array(np.array(255.0, dtype=np.float32), scale))
    g.input.remove(old)
    g.input.insert(0, new_input)
    rest = list(g.node)
    del g.node[:]
    g.node.extend(nodes + rest)
    onnx.checker.check_model(m)
    dst_onnx.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(m, str(dst_onnx))


def parity(main_onnx: Path, u8_onnx: Path, n: int = 4, seed: int = 0) -> dict:
    """Largest absolute difference between the main model on `x.astype(float32).transpose(0,3,1,2) / 255`
    and the uint8 one on x, over `n` random uint8 frames (ONNX Runtime, CPU): boxes (input pixels, the
    first 4 output columns) and objectness + class scores (the rest)."""
    import onnxruntime as ort

    sm, su = (ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]) for p in (main_onnx, u8_onnx))
    mi, ui = sm.get_inputs()[0], su.get_inputs()[0]
    _, c, h, w = (int(d) for d in mi.shape)
    if [int(d) for d in ui.shape] != [1, h, w, c]:
        raise ValueError(f"{u8_onnx} takes {ui.shape}, expected [1, {h}, {w}, {c}] for {main_onnx}'s {mi.shape}")
    rng = np.random.default_rng(seed)
    boxes = scores = 0.0
    for _ in range(n):
        x = rng.integers(0, 256, size=(1, h, w, c), dtype=np.uint8)
        f = x.astype(np.float32).transpose(0, 3, 1, 2) / np.float32(255.0)
        ym = sm.run(None, {mi.name: np.ascontiguousarray(f)})[0]
        yu = su.run(None, {ui.name: x})[0]
        d = np.abs(ym.astype(np.float64) - yu.astype(np.float64))
        boxes, scores = max(boxes, float(d[..., :4].max())), max(scores, float(d[..., 4:].max()))
    return {"boxes_px": boxes, "scores": scores}


def build(bundle_dir: Path, out: Path, key_path: Path, name: str = "u8", public: Path | None = None,
          command: str = "") -> tuple[dict, dict]:
    """The whole command; returns (the new manifest, the parity figures)."""
    key, pub, src = variant.open_source(bundle_dir, key_path, public, name, out)
    main_model = bundle_dir / src["model"]["file"]
    main_io = variant.graph_io(main_model)
    want = src["model"]["input"]
    if (main_io["dtype"], main_io["name"], main_io["width"], main_io["height"]) != \
            ("float32", want["name"], int(want["width"]), int(want["height"])):
        raise ValueError(f"{main_model} takes {main_io}, the manifest says {want} (float32)")
    file = f"model-{name}.onnx"
    with tempfile.TemporaryDirectory(prefix="hallmark-prologue-") as t:
        tmp = Path(t)
        u8 = tmp / file
        add_prologue(main_model, u8)
        io = variant.graph_io(u8)
        if (io["dtype"], io["width"], io["height"]) != ("uint8", main_io["width"], main_io["height"]):
            raise ValueError(f"{u8} takes {io}, expected uint8 {main_io['width']}x{main_io['height']}")
        if io["outputs"][:1] != [src["model"]["output"]["name"]]:
            raise ValueError(f"{u8}'s output is {io['outputs']}, the agent reads {src['model']['output']['name']!r}")
        diff = parity(main_model, u8)
        if any(diff[k] > tol for k, tol in PARITY_TOL.items()):
            raise ValueError(f"{u8} differs from {main_model} by {diff} (tolerance {PARITY_TOL})")
        of = {"model_sha256": src["model"]["sha256"], "prologue": PROLOGUE,
              "max_abs_diff_vs_model": {k: float(f"{x:.3g}") for k, x in diff.items()},
              "parity_inputs": "4 random uint8 frames, ONNX Runtime CPU",
              "figures": "the main model's (same detector, same scores); not carried: " + ", ".join(NOT_CARRIED)}
        v = variant.entry(name, file, bundle.sha256_file(u8), io, dict(src["thresholds"]),
                          carried(src["metrics"], of))
        extras = {}
        main_picture = bundle_dir / "tradeoff.png"
        if main_picture.is_file():
            extras[f"tradeoff-{name}.png"] = main_picture
        doc = variant.add_variant(bundle_dir, out, u8, v, key, extras, command,
                                  about=about(src["model"], v, picture=bool(extras)), picture=bool(extras))
    bundle.verify(out, pub)
    return doc, diff


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Add a uint8 NHWC variant (the main model with the normalisation "
                                             "and transpose inside the graph) to a copy of a signed bundle.")
    ap.add_argument("--bundle", type=Path, required=True, help="a signed bundle folder")
    ap.add_argument("--name", default="u8", help="the variant's name, [a-z0-9-] (default u8)")
    args = variant.parse_copy_args(ap, argv)
    command = f"python -m hallmark_models.prologue --bundle {args.bundle} --name {args.name}"
    doc, diff = build(args.bundle, args.out, args.key, args.name, args.public, command)
    v = next(x for x in doc["variants"] if x["name"] == args.name)
    print(json.dumps({"max_abs_diff_vs_model": diff}, indent=1))
    print(f"wrote {args.out}: {doc['brand']} revision {doc['revision']}, variant {v['name']} ({v['file']}, "
          f"sha256 {v['sha256']}), thresholds {v['thresholds']}")


if __name__ == "__main__":
    main()
