"""A quarter-turns variant: the bundle's main model run on the letterboxed frame and on its three quarter
turns inside one graph, each pass's boxes turned back into the frame and all rows concatenated, added to
a copy of the bundle (`variants` in models/BUNDLE.md) with its own thresholds, and re-signed. Light venv
(onnx, onnxruntime, numpy): nothing is trained or exported.

    ../../.venv/bin/python -m hallmark_models.turns --bundle ../aurora --data ../work/aurora/data \\
        --composite ../work/aurora/composite --out /tmp/aurora-turns [--key KEY] [--public PUB] [--name N]
        [--dry-run]

Why: a pack held sideways or upside down is the detector's weak spot on real photos (the composite set's
turned frames scored 65–70% against 90–96% upright). A pack turned by a quarter turn is upright in one of
the four passes; the agent's class-aware NMS then keeps the best box per pack, and its verdict rule takes
the item's best genuine and counterfeit scores as always.

1. `add_turns`: the main graph (float32 NCHW `[1,3,S,S]`, square, static) four times over shared weights,
   fed the input, its 90° counter-clockwise turn (Transpose + flip of H), its half turn (flip of H and W)
   and its 90° clockwise turn (Transpose + flip of W); each pass's `[1,N,5+C]` rows get their centre and
   size turned back (`cx, cy, w, h` of pass k in the frame's pixels: k=1 `S-cy, cx, h, w`; k=2
   `S-cx, S-cy, w, h`; k=3 `cy, S-cx, h, w`) and the four are concatenated to `[1,4N,5+C]` under the main
   output's name. The agent reads it like any YOLOv5 output: nothing in the agent knows about turns.
2. `parity`: on random frames the graph must equal the main model run on the four turned frames
   (numpy's `rot90`) with the same boxes turned back (`PARITY_TOL`).
3. Evaluates the file as a release does (`evaluation.evaluate_brand`: the agent's rule, item floor and
   thresholds chosen on validation under the caps) and writes to `--out` (new or empty) a copy of the
   bundle with `model-<name>.onnx`, its `variants` entry, `tradeoff-<name>.png`, a report.md section,
   `revision` + 1, signed with `--key` (`variant.add_variant`, which also has the agent verify it).
   `--dry-run` stops before signing: it writes only the graph (`--out`/model-<name>.onnx) and prints the
   rule and figures, so a candidate can be scored (`score --model`) before anyone signs it.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from . import bundle, evaluation
from . import variants as variant

from .variants import TURNS, is_turns  # noqa: F401 (re-exported)
from .variants import turns_about as about  # noqa: F401
PARITY_TOL = {"boxes_px": 1e-2, "scores": 1e-4}
INT64_MAX = np.iinfo(np.int64).max


def turned_back(rows: np.ndarray, k: int, size: int) -> np.ndarray:
    """Rows `[..., cx, cy, w, h, ...]` found in the frame turned k quarter turns counter-clockwise
    (numpy's `rot90(frame, k)`), in the unturned frame's pixels (`size` the square frame's side)."""
    out = rows.copy()
    cx, cy, w, h = (rows[..., i] for i in range(4))
    if k == 1:
        out[..., 0], out[..., 1], out[..., 2], out[..., 3] = size - cy, cx, h, w
    elif k == 2:
        out[..., 0], out[..., 1] = size - cx, size - cy
    elif k == 3:
        out[..., 0], out[..., 1], out[..., 2], out[..., 3] = cy, size - cx, h, w
    return out


def _static_dims(value) -> list[int | None]:
    return [d.dim_value if d.HasField("dim_value") else None for d in value.type.tensor_type.shape.dim]


def add_turns(src_onnx: Path, dst_onnx: Path) -> None:
    """Writes `dst_onnx`: `src_onnx` (float32 NCHW [1,3,S,S] input, one [1,N,5+C] output read by the agent)
    run on the input and its three quarter turns, boxes turned back, rows concatenated to [1,4N,5+C]."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    m = onnx.load(str(src_onnx))
    g = m.graph
    inits = {i.name for i in g.initializer}
    inputs = [i for i in g.input if i.name not in inits]
    if len(inputs) != 1 or inputs[0].type.tensor_type.elem_type != TensorProto.FLOAT:
        raise ValueError(f"{src_onnx}: expected one float32 input, found {[i.name for i in inputs]}")
    dims = _static_dims(inputs[0])
    if len(dims) != 4 or None in dims or dims[:2] != [1, 3] or dims[2] != dims[3]:
        raise ValueError(f"{src_onnx}: input {inputs[0].name} is not a static square NCHW [1,3,S,S]: {dims} "
                         "(a quarter turn of a non-square frame does not fit the input)")
    size = dims[2]
    if not g.output:
        raise ValueError(f"{src_onnx}: no output")
    out = g.output[0]
    odims = _static_dims(out)
    if len(odims) != 3 or None in odims or odims[0] != 1 or odims[2] < 6:
        raise ValueError(f"{src_onnx}: output {out.name} is not a static YOLOv5 [1,N,5+C]: {odims}")
    prefix = "turns/"
    names = {n for node in g.node for n in (*node.input, *node.output)}
    if any(n.startswith(prefix) for n in names | inits):
        raise ValueError(f"{src_onnx}: already has turns")
    image, output = inputs[0].name, out.name

    consts: list = []  # the new graph's own initializers (shapes, axes, the frame's side)
    nodes = []

    def c(name: str, values, dtype=np.int64) -> str:
        consts.append(numpy_helper.from_array(np.asarray(values, dtype=dtype), prefix + name))
        return prefix + name

    ax2, ax3, ax23 = c("axis_h", [2]), c("axis_w", [3]), c("axes_hw", [2, 3])
    back1, back2 = c("minus1", [-1]), c("minus1x2", [-1, -1])
    end1, end2 = c("end", [-INT64_MAX]), c("end_x2", [-INT64_MAX, -INT64_MAX])
    side = c("side", np.float32(size), np.float32)

    def flip(src: str, dst: str, axes: str, starts: str, ends: str) -> None:
        nodes.append(helper.make_node("Slice", [src, starts, ends, axes, starts], [dst], name=dst))

    turned = []
    for k in range(4):
        p = f"{prefix}{k}/"
        inp = p + "input"
        if k == 0:
            nodes.append(helper.make_node("Identity", [image], [inp], name=inp))
        elif k == 2:
            flip(image, inp, ax23, back2, end2)
        else:  # k=1: transpose, then flip H; k=3: transpose, then flip W
            nodes.append(helper.make_node("Transpose", [image], [p + "t"], name=p + "t", perm=[0, 1, 3, 2]))
            flip(p + "t", inp, ax2 if k == 1 else ax3, back1, end1)

        def renamed(n: str, p=p, inp=inp) -> str:
            return inp if n == image else n if (n in inits or n == "") else p + n

        for node in g.node:
            copy = onnx.NodeProto()
            copy.CopyFrom(node)
            copy.name = p + (node.name or node.output[0])
            copy.input[:] = [renamed(n) for n in node.input]
            copy.output[:] = [renamed(n) for n in node.output]
            nodes.append(copy)
        rows = renamed(output)
        if k == 0:
            turned.append(rows)
            continue
        col = {}
        for i, key in enumerate(("cx", "cy", "w", "h")):
            col[key] = p + key
            nodes.append(helper.make_node("Slice", [rows, c(f"{k}/s{i}", [i]), c(f"{k}/e{i}", [i + 1]),
                                                    c(f"{k}/a{i}", [2])], [col[key]], name=col[key]))
        rest = p + "rest"
        nodes.append(helper.make_node("Slice", [rows, c(f"{k}/s4", [4]), c(f"{k}/e4", [INT64_MAX]),
                                                c(f"{k}/a4", [2])], [rest], name=rest))
        for key in ("cx", "cy"):
            nodes.append(helper.make_node("Sub", [side, col[key]], [p + "side_minus_" + key], name=p + "side_minus_" + key))
        flipped = {key: p + "side_minus_" + key for key in ("cx", "cy")}
        order = {1: (flipped["cy"], col["cx"], col["h"], col["w"]),
                 2: (flipped["cx"], flipped["cy"], col["w"], col["h"]),
                 3: (col["cy"], flipped["cx"], col["h"], col["w"])}[k]
        nodes.append(helper.make_node("Concat", [*order, rest], [p + "rows"], name=p + "rows", axis=2))
        turned.append(p + "rows")
    nodes.append(helper.make_node("Concat", turned, [output], name=prefix + "all_rows", axis=1))

    new_out = helper.make_tensor_value_info(output, out.type.tensor_type.elem_type, [1, 4 * odims[1], odims[2]])
    graph = helper.make_graph(nodes, g.name + "-turns", [inputs[0]], [new_out],
                              initializer=list(g.initializer) + consts)
    model = helper.make_model(graph, opset_imports=list(m.opset_import), producer_name="hallmark_models.turns")
    model.ir_version = m.ir_version
    onnx.checker.check_model(model)
    dst_onnx.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(dst_onnx))


def parity(main_onnx: Path, turns_onnx: Path, n: int = 2, seed: int = 0) -> dict:
    """Largest absolute difference between the turns graph and the main model run on numpy's four turns of
    the same random frames with the rows turned back (`turned_back`), over `n` frames (ONNX Runtime, CPU)."""
    import onnxruntime as ort

    sm, st = (ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]) for p in (main_onnx, turns_onnx))
    mi = sm.get_inputs()[0]
    size = int(mi.shape[3])
    rng = np.random.default_rng(seed)
    boxes = scores = 0.0
    for _ in range(n):
        x = rng.random((1, 3, size, size), dtype=np.float32)
        want = np.concatenate([turned_back(sm.run(None, {mi.name: np.ascontiguousarray(np.rot90(x, k, axes=(2, 3)))})[0],
                                           k, size) for k in range(4)], axis=1)
        got = st.run(None, {st.get_inputs()[0].name: x})[0]
        if got.shape != want.shape:
            raise ValueError(f"{turns_onnx} gives {got.shape}, four turned passes give {want.shape}")
        d = np.abs(got.astype(np.float64) - want.astype(np.float64))
        boxes, scores = max(boxes, float(d[..., :4].max())), max(scores, float(d[..., 4:].max()))
    return {"boxes_px": boxes, "scores": scores}


def build(bundle_dir: Path, out: Path, key_path: Path, data: Path, composite: Path | None = None,
          name: str = "quarter-turns", public: Path | None = None, command: str = "") -> tuple[dict, dict]:
    """The whole command; returns (the new manifest, `evaluate_brand`'s result for the variant)."""
    key, pub, src = variant.open_source(bundle_dir, key_path, public, name, out)
    main_model = bundle_dir / src["model"]["file"]
    file = f"model-{name}.onnx"
    with tempfile.TemporaryDirectory(prefix="hallmark-turns-") as t:
        tmp = Path(t)
        turns = tmp / file
        add_turns(main_model, turns)
        io = variant.graph_io(turns)
        variant.check_entry_io(io, src, int(src["model"]["input"]["width"]))
        diff = parity(main_model, turns)
        if any(diff[k] > tol for k, tol in PARITY_TOL.items()):
            raise ValueError(f"{turns} differs from four turned passes of {main_model} by {diff} (tolerance {PARITY_TOL})")
        res = evaluation.evaluate_brand(src["brand"], data, composite, bundle_dir=bundle_dir, model=turns)
        evaluation.check_releasable(res, f"{src['brand']} variant {name}", show_figures=True)
        metrics = evaluation.metrics_of(res, {"map50": None, "map50_per_class": None,
                                           "training": src["metrics"].get("training")})
        metrics["variant_of"] = {"model_sha256": src["model"]["sha256"], "turns": TURNS, "passes": 4,
                                 "max_abs_diff_vs_turned_passes": {k: float(f"{x:.3g}") for k, x in diff.items()}}
        v = variant.entry(name, file, bundle.sha256_file(turns), io, evaluation.thresholds_of(res), metrics)
        picture = tmp / f"tradeoff-{name}.png"
        evaluation.draw_rule(picture, f"{src['brand']} revision {int(src['revision']) + 1}, variant {name} (four quarter turns)", res)
        doc = variant.add_variant(bundle_dir, out, turns, v, key, {picture.name: picture}, command,
                                  about=about(src["model"], v))
    bundle.verify(out, pub)
    return doc, res


def dry_run(bundle_dir: Path, out: Path, data: Path, composite: Path | None = None,
            name: str = "quarter-turns") -> tuple[Path, dict]:
    """`build` without a key: the graph written to `out`/model-<name>.onnx (checked against four turned
    passes), evaluated as a release would; nothing signed. Returns (the graph, `evaluate_brand`'s result)."""
    src = json.loads((bundle_dir / "manifest.json").read_text())
    main_model = bundle_dir / src["model"]["file"]
    out.mkdir(parents=True, exist_ok=True)
    turns = out / f"model-{name}.onnx"
    add_turns(main_model, turns)
    diff = parity(main_model, turns)
    if any(diff[k] > tol for k, tol in PARITY_TOL.items()):
        raise ValueError(f"{turns} differs from four turned passes of {main_model} by {diff} (tolerance {PARITY_TOL})")
    return turns, evaluation.evaluate_brand(src["brand"], data, composite, bundle_dir=bundle_dir, model=turns)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Add a quarter-turns variant (the main model on the frame and its "
                                             "three quarter turns, in one graph) to a copy of a signed bundle.")
    ap.add_argument("--bundle", type=Path, required=True, help="a signed bundle folder")
    ap.add_argument("--name", default="quarter-turns", help="the variant's name, [a-z0-9-] (default quarter-turns)")
    ap.add_argument("--data", type=Path, required=True, help="generated data with val and test splits")
    ap.add_argument("--composite", type=Path, help="composite sets (hallmark_models.composite)")
    ap.add_argument("--dry-run", action="store_true",
                    help="write only the graph into --out and print its rule and figures; sign nothing")
    args = variant.parse_copy_args(ap, argv)
    if args.dry_run:
        path, res = dry_run(args.bundle, args.out, args.data, args.composite, args.name)
        print(json.dumps(evaluation.brief(res), indent=1))
        t = evaluation.thresholds_of(res)
        for p in evaluation.refusals(res):
            print(f"a release would refuse this: {p}")
        print(f"wrote {path} (not signed); its rule: --rule {args.name}={t['confidence']},{t['genuine']},"
              f"{t['counterfeit']},{t['margin']}")
        return
    command = (f"python -m hallmark_models.turns --bundle {args.bundle} --name {args.name} --data {args.data}"
               + (f" --composite {args.composite}" if args.composite else ""))
    doc, res = build(args.bundle, args.out, args.key, args.data, args.composite, args.name, args.public, command)
    v = next(x for x in doc["variants"] if x["name"] == args.name)
    print(json.dumps(evaluation.brief(res), indent=1))
    print(f"wrote {args.out}: {doc['brand']} revision {doc['revision']}, variant {v['name']} ({v['file']}, "
          f"sha256 {v['sha256']}), thresholds {v['thresholds']}")


if __name__ == "__main__":
    main()
