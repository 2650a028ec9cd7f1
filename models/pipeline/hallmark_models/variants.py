"""What a bundle's variants are, and how one is added: the library under the `variant`, `prologue` and
`turns` commands and `release` (which keeps a bundle's variants across a threshold-only release). A
variant is the main detector at another size (or fine-tuned at it: `check_lineage`), the main model
behind a byte prologue (`is_prologue`, `carried`, `prologue_about`) or run on four quarter turns
(`is_turns`, `turns_about`); `add_variant` writes a copy of a bundle with one more and signs it, and
`report_section` is its part of report.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from . import agent_check, bundle

MODELS = Path(__file__).resolve().parents[2]
DTYPES = {"tensor(float)": "float32", "tensor(uint8)": "uint8"}
SAME_DETECTOR_TOL = {"scores": 1e-3, "boxes_px": 0.05}


def main_checkpoint_sha256(doc: dict) -> str:
    """The sha256 of the checkpoint the bundle's main model was exported from (`metrics.training.sha256`)."""
    sha = ((doc.get("metrics") or {}).get("training") or {}).get("sha256")
    if not isinstance(sha, str) or len(sha) != 64:
        raise ValueError("the bundle's manifest records no training checkpoint (metrics.training.sha256): "
                         "a fine-tuned variant cannot be traced to its main model")
    return sha


def shipped_variant_roots(doc: dict, imgsz: int) -> dict:
    """The bundle's own fine-tuned variants at `imgsz` that a new fine-tune may continue from, by the
    sha256 of their ONNX file: {sha256: (name, file, variant_of)}. Only variants of this main model
    (`variant_of.model_sha256`) that were fine-tuned from it (`variant_of.fine_tuned`) count: their own
    lineage was checked when they were signed, and `recover` reproduces their graph to 1e-6, so weights
    recovered from one are a stage of this bundle's detector at that size, whose training checkpoint is
    no longer kept."""
    out = {}
    for v in doc.get("variants") or []:
        of = (v.get("metrics") or {}).get("variant_of") or {}
        size = (v.get("input") or {}).get("width")
        if of.get("fine_tuned") and of.get("model_sha256") == (doc.get("model") or {}).get("sha256") \
                and size is not None and int(size) == imgsz and isinstance(v.get("sha256"), str):
            out[v["sha256"]] = (v["name"], v["file"], of)
    return out


def check_lineage(weights: Path, parent_sha256: str, model_sha256: str | None = None,
                  imgsz: int | None = None, variant_roots: dict | None = None) -> dict:
    """A fine-tuned variant descends from the shipped detector: `weights`' training.json (next to it) must
    describe that file (its `sha256`) and name `parent_sha256` as a checkpoint it continued from, directly
    (`continued_from.sha256`) or through earlier fine-tuning stages (each stage's record nests the one it
    continued from: `continued_from.training`). A chain may also start from weights recovered from the
    bundle's own model.onnx (`recover`'s record, `recovered_from_onnx.sha256` == `model_sha256`): the main
    model's checkpoint itself is not kept forever, and `recover` reproduces the graph to 1e-6. Or from
    weights recovered from one of the bundle's own fine-tuned variants (`variant_roots`, from
    `shipped_variant_roots`: a shipped variant continued, its stages counted in). Returns the
    training record, with `stages` (how many fine-tuning stages lie between the main model and `weights`;
    1: directly), `seconds_total`, `epochs_total` over those stages and `root` ("checkpoint",
    "model.onnx" or "variant", with `root_variant`: the variant's name and file). With `imgsz`, every stage between the main model and `weights` must have trained at
    that size (`params.imgsz`): a run at the main size in between (a newer main detector, say) makes
    another detector, and a variant of this bundle must be its detector fine-tuned at the variant's size."""
    record_path = Path(weights).parent / "training.json"
    if not record_path.is_file():
        raise ValueError(f"{weights}: no training.json beside it, so its parent cannot be checked")
    record = json.loads(record_path.read_text())
    own = bundle.sha256_file(Path(weights))
    if record.get("sha256") != own:
        raise ValueError(f"{record_path} describes checkpoint {str(record.get('sha256'))[:16]}…, "
                         f"not {weights} ({own[:16]}…)")
    stage, stages, chain, seconds, epochs = record, 1, [], 0.0, 0
    while stage is not None:
        recovered = stage.get("recovered_from_onnx")
        if recovered:  # a root no check below recognised
            raise ValueError(f"{weights} starts from weights recovered from "
                             f"{recovered.get('file')} ({str(recovered.get('sha256'))[:16]}…), "
                             "neither the bundle's model.onnx nor one of its fine-tuned variants at this size: "
                             "not a descendant of the bundle's detector")
        trained_at = (stage.get("params") or {}).get("imgsz")
        if imgsz is not None and (trained_at is None or int(trained_at) != imgsz):
            raise ValueError(f"{record_path}: fine-tuning stage {stages} (checkpoint "
                             f"{str(stage.get('sha256'))[:16]}…) trained at {trained_at or 'an unrecorded size'}, "
                             f"not {imgsz}: between the main model and {weights} lies a run at another size, so "
                             f"this is another detector, not the bundle's fine-tuned at {imgsz}")
        seconds += float(stage.get("seconds") or 0.0)
        epochs += int(stage.get("epochs_run") or 0)
        parent = (stage.get("continued_from") or {}).get("sha256")
        found = dict(record, stages=stages, seconds_total=round(seconds, 1), epochs_total=epochs)
        if parent == parent_sha256:
            return dict(found, root="checkpoint")
        earlier = (stage.get("continued_from") or {}).get("training")
        if earlier is not None and earlier.get("sha256") != parent:
            raise ValueError(f"{record_path}: the record of stage {stages + 1} describes "
                             f"{str(earlier.get('sha256'))[:16]}…, not its parent {str(parent)[:16]}…")
        recovered_from = ((earlier or {}).get("recovered_from_onnx") or {}).get("sha256")
        if model_sha256 is not None and recovered_from == model_sha256:
            return dict(found, root="model.onnx")
        if recovered_from is not None and recovered_from in (variant_roots or {}):
            name, file, of = variant_roots[recovered_from]
            before = of.get("fine_tune") or {}
            return dict(found, root="variant", root_variant={"name": name, "file": file, "sha256": recovered_from},
                        stages=stages + int(before.get("stages") or 0),
                        seconds_total=round(seconds + float(before.get("seconds_total") or 0.0), 1),
                        epochs_total=epochs + int(before.get("epochs_total") or 0))
        chain.append(str(parent)[:16])
        stage, stages = earlier, stages + 1
    raise ValueError(f"{weights} was fine-tuned from {' <- '.join(chain)}…, none of them the main model's "
                     f"checkpoint {parent_sha256[:16]}…: not a descendant of the bundle's detector")


def lineage_root_text(lineage: dict, src: dict) -> str:
    """Where a fine-tuned variant's chain starts, in words, for `metrics.variant_of.lineage_root`."""
    if lineage["root"] == "checkpoint":
        return "the main model's checkpoint"
    if lineage["root"] == "variant":
        v = lineage["root_variant"]
        return (f"weights recovered from {v['file']} ({v['sha256'][:16]}…, hallmark_models.recover), the "
                f"bundle's {v['name']} variant fine-tuned from the main model; its stages are counted in")
    return f"weights recovered from {src['model']['file']} (hallmark_models.recover)"


def graph_io(path: Path) -> dict:
    """The ONNX graph's input (name, dtype, width, height) and output names, as onnxruntime sees them. The
    layout follows the dtype (models/BUNDLE.md): float32 is NCHW [1,3,H,W], uint8 is NHWC [1,H,W,3]."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    shape = inp.shape
    dtype = DTYPES.get(inp.type, inp.type)
    if len(shape) != 4 or not all(isinstance(d, int) for d in shape):
        raise ValueError(f"{path}: input {inp.name} has no static 4-d shape: {shape}")
    if dtype == "uint8":
        if shape[0] != 1 or shape[3] != 3:
            raise ValueError(f"{path}: uint8 input {inp.name} is not NHWC [1,H,W,3]: {shape}")
        height, width = shape[1], shape[2]
    else:
        if shape[0] != 1 or shape[1] != 3:
            raise ValueError(f"{path}: {dtype} input {inp.name} is not NCHW [1,3,H,W]: {shape}")
        height, width = shape[2], shape[3]
    return {"name": inp.name, "dtype": dtype, "width": int(width), "height": int(height),
            "outputs": [o.name for o in sess.get_outputs()]}


def max_diff(a: Path, b: Path) -> dict:
    """Largest absolute difference between two ONNX detectors of the same input shape on one random input:
    boxes (input pixels) and objectness + class scores."""
    import onnxruntime as ort

    sa, sb = (ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]) for p in (a, b))
    shape = [int(d) for d in sa.get_inputs()[0].shape]
    if shape != [int(d) for d in sb.get_inputs()[0].shape]:
        raise ValueError(f"{a} and {b} take different inputs")
    x = np.random.default_rng(0).random(shape, dtype=np.float32)
    ya = sa.run(None, {sa.get_inputs()[0].name: x})[0]
    yb = sb.run(None, {sb.get_inputs()[0].name: x})[0]
    d = np.abs(ya - yb)
    return {"boxes_px": float(d[..., :4].max()), "scores": float(d[..., 4:].max())}


def check_entry_io(io: dict, main: dict, imgsz: int) -> None:
    """The exported graph is what the entry will say: imgsz square, float32 input, the main model's output."""
    if (io["width"], io["height"]) != (imgsz, imgsz):
        raise ValueError(f"export has input {io['width']}x{io['height']}, asked for {imgsz}x{imgsz}")
    if io["dtype"] != "float32":
        raise ValueError(f"export takes {io['dtype']}, expected float32")
    want = main["model"]["output"]["name"]
    if io["outputs"][:1] != [want]:
        raise ValueError(f"export's output is {io['outputs']}, the agent reads {want!r} (model.output.name)")


def entry(name: str, file: str, sha256: str, io: dict, thresholds: dict, metrics: dict,
          precision: str = "fp32") -> dict:
    return {"name": name, "file": file, "sha256": sha256, "precision": precision,
            "input": {"name": io["name"], "dtype": io["dtype"], "width": io["width"], "height": io["height"]},
            "thresholds": thresholds, "metrics": metrics}


def _pct(v) -> str:
    return "–" if v is None else f"{100 * v:.1f}%"


def report_section(doc: dict, v: dict, command: str = "", about: str | None = None, picture: bool = True) -> str:
    """A report.md section: the variant's figures beside the main model's, both from the manifest. `about`
    replaces the paragraph that says what the variant is (default: the detector exported at another size,
    thresholded on its own); `picture`: embed `tradeoff-<name>.png` (the bundle has it)."""
    main, var = doc["metrics"], v["metrics"]

    def row(label, f):
        try:
            a = f(main)
        except (KeyError, TypeError):
            a = "–"
        try:
            b = f(var)
        except (KeyError, TypeError):
            b = "–"
        return f"| {label} | {'–' if a is None else a} | {'–' if b is None else b} |"

    def alarms(m, scenes, hit):
        return f"{m[hit]} of {m[scenes]}"

    t = v["thresholds"]
    inp = v["input"]
    if about is None:
        what = (f"fine-tuned at {inp['width']}×{inp['height']} from the main model's weights"
                if (var.get("variant_of") or {}).get("fine_tuned") else
                f"the same detector exported at {inp['width']}×{inp['height']}")
        about = (f"`{v['file']}`: {what} ({v['precision']}, "
                 f"sha256 `{v['sha256'][:16]}…`), evaluated by the same rule. Its thresholds, chosen on validation "
                 f"under the same caps: item floor (confidence) {t['confidence']}, genuine {t['genuine']}, "
                 f"counterfeit {t['counterfeit']}, margin {t['margin']}"
                 + ("" if var.get("validation", {}).get("caps_met", True)
                    else " — **the caps could not all be met on validation**")
                 + ".")
    lines = [
        "",
        f"## Variant `{v['name']}` (revision {doc['revision']})",
        "",
        about,
        "",
        f"| figure | main model ({doc['model']['input']['width']}) | {v['name']} |",
        "|---|---|---|",
        row("validation accuracy", lambda m: _pct(m["validation"]["verdict_accuracy"])),
        row("validation genuine → counterfeit, counterfeit → genuine",
            lambda m: f"{_pct(m['validation']['genuine_called_counterfeit'])}, {_pct(m['validation']['counterfeit_called_genuine'])}"),
        row("test accuracy", lambda m: _pct(m["verdict_accuracy"])),
        row("test genuine → counterfeit, counterfeit → genuine",
            lambda m: f"{_pct(m['genuine_called_counterfeit'])}, {_pct(m['counterfeit_called_genuine'])}"),
        row("test counterfeit → counterfeit", lambda m: _pct(m["counterfeit_called_counterfeit"])),
        row("test empty scenes with a counterfeit call", lambda m: alarms(m, "empty_scenes", "empty_scenes_with_false_alarm")),
        row("test product-free photos with a counterfeit call",
            lambda m: f"{m['product_free_photos']['with_false_alarm']} of {m['product_free_photos']['photos']}"),
        row("test product-free photos with a genuine call",
            lambda m: f"{m['product_free_photos']['with_genuine']} of {m['product_free_photos']['photos']}"),
        row("test product-free photos showing any item",
            lambda m: f"{m['product_free_photos']['with_item']} of {m['product_free_photos']['photos']}"),
        row("composite accuracy", lambda m: _pct(m["composite_test"]["verdict_accuracy"])),
        row("composite genuine → counterfeit, counterfeit → genuine",
            lambda m: f"{_pct(m['composite_test']['genuine_called_counterfeit'])}, "
                      f"{_pct(m['composite_test']['counterfeit_called_genuine'])}"),
        row("composite product-free photos with a counterfeit call",
            lambda m: alarms(m["composite_test"], "product_free_photos", "product_free_photos_with_false_alarm")),
        row("composite items of any verdict on no pack", lambda m: m["composite_test"]["phantom_items"]),
        row("mAP50 (test)", lambda m: m["map50"]),
        row("inference, median ms (ORT, 2 threads; each timed at its own evaluation, under that load)",
            lambda m: m["inference_ms_median_ort_2_threads"]),
    ]
    if picture:
        lines += ["", f"![trade-off, {v['name']}](tradeoff-{v['name']}.png)"]
    if command:
        lines += ["", f"Made by `{command}`."]
    return "\n".join(lines) + "\n"


def _without_section(text: str, name: str) -> str:
    """report.md without an earlier section for the variant `name` (it is being replaced)."""
    head = f"\n## Variant `{name}` "
    start = text.find(head)
    if start < 0:
        return text
    end = text.find("\n## ", start + len(head))
    return text[:start] + ("\n" + text[end + 1:] if end >= 0 else "\n")


def add_variant(src: Path, out: Path, variant_file: Path, v: dict, key, extras: dict[str, Path] | None = None,
                command: str = "", about: str | None = None, picture: bool = True) -> dict:
    """Copies the bundle `src` to `out` (new or empty) with `variant_file` as `v['file']` and the `extras`
    (name -> file, e.g. the trade-off picture), puts `v` in the manifest's `variants` (replacing one of the
    same name), revision + 1, appends the variant's section to report.md (`about`, `picture`: see
    `report_section`), and signs. The main model, its thresholds and metrics are left as they are."""
    doc = json.loads((src / "manifest.json").read_text())
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty: the variant goes into a new copy of the bundle")
    tmp = out.parent / f".{out.name}.part"
    if tmp.exists():
        shutil.rmtree(tmp)
    shutil.copytree(src, tmp)
    try:
        variants = [dict(x) for x in doc.get("variants") or []]
        for old in [x for x in variants if x.get("name") == v["name"]]:
            variants.remove(old)
            if old.get("file") and old["file"] != v["file"]:
                (tmp / old["file"]).unlink(missing_ok=True)
        variants.append(v)
        shutil.copy(variant_file, tmp / v["file"])
        for name, path in (extras or {}).items():
            shutil.copy(path, tmp / name)
        doc["variants"] = variants
        doc["revision"] = int(doc["revision"]) + 1
        doc["created"] = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        # The report first: the signature lists every file of the bundle, report.md included.
        rep = tmp / "report.md"
        text = _without_section(rep.read_text(), v["name"]) if rep.exists() else ""
        rep.write_text(text.rstrip("\n") + "\n" + report_section(doc, v, command, about, picture))
        doc = bundle.sign(tmp, doc, key)
        agent_check.verify(tmp, key)
        if out.exists():
            out.rmdir()
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return doc


def open_source(bundle_dir: Path, key_path: Path, public: Path | None, name: str, out: Path | None = None):
    """What every variant command starts from: the signing key, the public key the source bundle must
    verify with (default: the signing key's), and the source manifest, verified (a variant is built on a
    bundle we would trust). Refuses a bad variant name and an `out` that is not empty. Returns
    (key, public key, manifest)."""
    key = bundle.load_private(key_path)
    pub = bundle.load_public(public) if public else key.public_key()
    src = bundle.verify(bundle_dir, pub)
    if not bundle._VARIANT_NAME.fullmatch(name):
        raise ValueError(f"--name {name!r}: [a-z0-9-] only")
    if out is not None and out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty: the variant goes into a new copy of the bundle")
    return key, pub, src


def parse_copy_args(ap: argparse.ArgumentParser, argv: list[str] | None):
    """Adds the options of a command that writes a re-signed copy of a bundle (--key, --public, --out),
    parses `argv`, and refuses an --out that is not empty."""
    ap.add_argument("--key", type=Path, default=MODELS / "keys" / "demo-publisher.key.pem")
    ap.add_argument("--public", type=Path, help="key the source bundle must verify with (default: --key's)")
    ap.add_argument("--out", type=Path, required=True, help="new or empty folder for the new bundle")
    args = ap.parse_args(argv)
    if args.out.exists() and any(args.out.iterdir()):
        ap.error(f"--out {args.out} is not empty")
    return args


PROLOGUE = "uint8 NHWC -> Cast -> Div 255 -> Transpose"
# Figures that were measured on the main model's file itself, not on its outputs: not carried over.
NOT_CARRIED = ("inference_ms_median_ort_2_threads",)


def is_prologue(v: dict) -> bool:
    """Whether a `variants` entry is the main model behind a prologue (the same detector, same scores)."""
    return bool(((v.get("metrics") or {}).get("variant_of") or {}).get("prologue"))


def carried(main_metrics: dict, variant_of: dict) -> dict:
    """A prologue variant's metrics: the main model's, less what was measured on its file, plus `variant_of`."""
    return {k: x for k, x in main_metrics.items() if k not in NOT_CARRIED} | {"variant_of": variant_of}


def prologue_about(main_model: dict, v: dict, picture: bool) -> str:
    """report.md's paragraph on a prologue variant `v` of the manifest's `main_model`."""
    d = v["metrics"]["variant_of"]["max_abs_diff_vs_model"]
    inp, t = v["input"], v["thresholds"]
    return (f"`{v['file']}`: the main model (`{main_model['file']}`, sha256 `{main_model['sha256'][:16]}…`) "
            f"with a uint8 NHWC prologue ({v['precision']}, sha256 `{v['sha256'][:16]}…`): input "
            f"`{inp['name']}` uint8 [1,{inp['height']},{inp['width']},3], the letterboxed RGB frame as bytes; "
            "Cast → Div 255 → Transpose inside the graph, then the main model's graph unchanged. Same "
            "detector, same scores: on 4 random frames (ONNX Runtime, CPU) the largest difference from the "
            f"main model's outputs is {d['boxes_px']:.3g} px in the boxes and {d['scores']:.3g} in the "
            "scores" + (" (bit-identical)" if not any(d.values()) else "") + ". So it carries the main "
            f"model's thresholds (item floor {t['confidence']}, genuine {t['genuine']}, counterfeit {t['counterfeit']}, margin {t['margin']}) "
            "and figures" + (", and its trade-off picture is a copy of `tradeoff.png`" if picture else "")
            + "; its inference time was not measured.")


TURNS = "the frame and its 90, 180 and 270 degree turns through the main model, boxes turned back, rows concatenated"


def is_turns(v: dict) -> bool:
    """Whether a `variants` entry is a quarter-turns wrapping of the main model."""
    return bool(((v.get("metrics") or {}).get("variant_of") or {}).get("turns"))


def turns_about(main_model: dict, v: dict) -> str:
    """report.md's paragraph on a quarter-turns variant `v` of the manifest's `main_model`."""
    d, t = v["metrics"]["variant_of"]["max_abs_diff_vs_turned_passes"], v["thresholds"]
    return (f"`{v['file']}` (sha256 `{v['sha256'][:16]}…`): the main model (`{main_model['file']}`, sha256 "
            f"`{main_model['sha256'][:16]}…`) run four times in one graph, on the letterboxed frame and on its "
            "90°, 180° and 270° turns, each pass's boxes turned back and the rows concatenated, so a pack held "
            "sideways or upside down is upright in one pass; the agent's NMS and rule take it from there. "
            f"Against four separate passes of the main model it differs by at most {d['boxes_px']:.3g} px and "
            f"{d['scores']:.3g} in the scores. Four times the main model's compute. Its rule, chosen on "
            f"validation under the same caps: item floor {t['confidence']}, genuine {t['genuine']}, "
            f"counterfeit {t['counterfeit']}, margin {t['margin']}"
            + ("" if v["metrics"].get("validation", {}).get("caps_met", True)
               else " — **the caps could not all be met on validation**") + ".")
