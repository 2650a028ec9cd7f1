"""Brand onboarding: a brand's upload (models/README.md, "The upload") becomes a signed bundle, with no
code change. `models/pipeline/onboard.sh UPLOAD OUT --key KEY [--budget-min N]` runs this (the training
venv), and so does the training container (deploy/training/Dockerfile).

Stages (each printed as it starts, with the minutes spent and left of the budget):
1. **check** the upload (`upload.check`): every problem at once, by file and line; nothing is trained
   on an upload that fails it (exit 2).
2. **split** its photos by content (`split.assign`: near-duplicates of one shoot together; a previous
   revision's photos stay where they were).
3. **data**: the training set (the training photos and their quarter turns, and `synth`'s copy-paste
   frames: the brand's packs and reference artwork on the opencv-doc train third at any angle, light and
   scale, with product-free frames), the validation sets (its validation photos; the opencv-doc val
   third and views of it, product-free; its validation packs pasted onto the val third by `composite`'s
   code) and the test sets (the same from its test photos and the test third).
4. **base**: the detector training starts from (`base`: a shipped Hallmark detector, or the previous
   revision's, recovered with BatchNorm calibrated and given the brand's classes).
5. **train** to the budget left (CUDA when there is one), reusing a finished run on the same data.
6. **choose** the rule (item floor, genuine, counterfeit, margin) under the caps the shipped brands meet
   (`verdicts.Caps`, each validation set alone) for the run's best and last checkpoints, and keep the
   better; when no candidate meets the caps nothing is signed and the exit status is 3, with what would
   help, per class.
7. **bundle**: model.onnx, manifest (revision: the previous one's + 1), reference/, tradeoff.png,
   report.md (figures, per-class confusion, the agent's scan of the held-out photos, a gallery of its
   mistakes), selftest/ (held-out photos the agent judges right), split.json; signed with the key; then
   `hallmark models verify` and `hallmark scan` (the agent's own verdicts on the held-out photos).
The last lines say what to run next: `hallmark publish` to the canary devices, then to the fleet.

    python -m hallmark_models.onboard UPLOAD OUT --key KEY [--budget-min 40] [--previous BUNDLE]
    python -m hallmark_models.onboard --watch INBOX OUT_ROOT --key KEY     # onboard each upload marked READY
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from . import agent_check, brand_report, bundle, photos, split, synth, upload
from . import evaluation as E
from . import verdicts as V

MODELS = Path(__file__).resolve().parents[2]
DEFAULT_BASE = Path(os.environ.get("HALLMARK_BASE_BUNDLE", MODELS / "northwind"))
IMGSZ = 320
SYNTH_FRAMES = 700
COMPOSITE_PACKS = {"val": 300, "test": 400}  # about this many pasted held-out packs per set
EVAL_RESERVE_MIN = 6.0
DATA_VERSION = 1  # raise when build_data draws other sets from the same upload  # what choosing, bundling and the agent's checks take after training
VAL_KEYS = ("val", "photos-val", "composite-val")


class Refused(SystemExit):
    pass


class Progress:
    STAGES = ("check", "split", "data", "base", "train", "choose", "bundle", "agent checks")

    def __init__(self, budget_min: float):
        self.t0, self.budget = time.monotonic(), budget_min

    def minutes(self) -> float:
        return (time.monotonic() - self.t0) / 60

    def left(self) -> float:
        return self.budget - self.minutes()

    def stage(self, name: str, what: str = "") -> None:
        k = self.STAGES.index(name) + 1
        print(f"[onboard {self.minutes():5.1f} min, {max(0.0, self.left()):.1f} left] stage {k}/{len(self.STAGES)}: "
              f"{name}{' - ' + what if what else ''}", flush=True)


def _write_labels(path: Path, boxes: list[tuple[int, float, float, float, float]], w: int, h: int) -> None:
    path.write_text("".join(f"{c} {(x1 + x2) / 2 / w:.6f} {(y1 + y2) / 2 / h:.6f} {(x2 - x1) / w:.6f} {(y2 - y1) / h:.6f}\n"
                            for c, x1, y1, x2, y2 in boxes))


def _quarter_turn(path: Path, boxes, w: int, h: int, k: int, dst: Path):
    """The photo turned k quarter turns counter-clockwise, and its boxes with it (exact)."""
    from PIL import Image

    with Image.open(path) as im:
        im.convert("RGB").transpose([Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_180,
                                     Image.Transpose.ROTATE_270][k - 1]).save(dst, quality=92)
    out = []
    for c, x1, y1, x2, y2 in boxes:
        W, H = w, h
        for _ in range(k):  # (x, y) -> (y, W - x) on a W x H image
            x1, y1, x2, y2 = y1, W - x2, y2, W - x1
            W, H = H, W
        out.append((c, x1, y1, x2, y2))
    return out, (w, h) if k % 2 == 0 else (h, w)


def content_digest(rows: list[dict]) -> str:
    """The upload's photos and labels as training sees them (each photo's SHA-256, split and boxes, to
    2 px), whatever the format: the same upload as COCO, YOLO or VOC has one digest."""
    h = hashlib.sha256()
    for r in sorted(rows, key=lambda r: r["sha256"]):
        # to 0.1 px first (YOLO's normalised fractions come back a hair off), then 2 px bins: a coordinate
        # that one format still puts on a bin's other side only costs a rebuild
        boxes = sorted((c, *(int(round(round(v, 1) / 2)) for v in b)) for c, *b in r["boxes"])
        h.update(json.dumps([r["sha256"], r["split"], boxes]).encode())
    return h.hexdigest()


def build_data(up: upload.Upload, classes: list[dict], splits: list[str], work: Path, seed: int = 31,
               synth_frames: int = SYNTH_FRAMES) -> dict:
    """Lays out work/data (yolov5's layout: images/<split>, labels/<split>, <split>.jsonl, data.yaml) and
    the evaluation sets; returns what the later stages need."""
    from PIL import Image

    from . import composite as C

    data = work / "data"
    index = {c["name"]: c["id"] for c in classes}
    rows = []
    for ph, sp in zip(up.photos, splits):
        boxes = [(index[up.class_of(b)], b.x1, b.y1, b.x2, b.y2) for b in ph.boxes if up.class_of(b) in index]
        rows.append({"name": ph.name, "path": ph.path, "sha256": ph.sha256, "split": sp, "boxes": boxes,
                     "w": ph.width, "h": ph.height, "file": f"{ph.sha256[:16]}{ph.path.suffix.lower()}"})
    # The same photos, labels, classes, references and settings give the same sets: built once.
    key = hashlib.sha256(json.dumps([content_digest(rows), classes, sorted((n, bundle.sha256_file(p))
                                     for n, p in up.references.items()), seed, synth_frames, DATA_VERSION]).encode()).hexdigest()
    record = work / "data.json"
    if record.is_file() and json.loads(record.read_text()).get("key") == key and data.is_dir():
        kept = json.loads(record.read_text())
        print(f"[onboard] data: reusing {data} (built from the same photos, labels and settings)", flush=True)
        return dict(kept, rows=rows, data=data, composite=work / "composite")
    if data.exists():
        shutil.rmtree(data)
    for sp in split.SPLITS:
        (data / "images" / sp).mkdir(parents=True, exist_ok=True)
        (data / "labels" / sp).mkdir(parents=True, exist_ok=True)
    jsonl = {sp: [] for sp in split.SPLITS}
    for r in rows:
        dst = data / "images" / r["split"] / r["file"]
        shutil.copy(r["path"], dst)
        _write_labels(data / "labels" / r["split"] / f"{Path(r['file']).stem}.txt", r["boxes"], r["w"], r["h"])
        jsonl[r["split"]].append({"image": r["file"], "framing": "upload" if r["boxes"] else "empty",
                                  "items": [b[0] for b in r["boxes"]], "source": r["name"]})
        if r["split"] == "train":  # a hand or a belt turns a pack: each training photo three more times
            for k in (1, 2, 3):
                name = f"{Path(r['file']).stem}-turn{k}.jpg"
                boxes, (w, h) = _quarter_turn(r["path"], r["boxes"], r["w"], r["h"], k, data / "images" / "train" / name)
                _write_labels(data / "labels" / "train" / f"{Path(name).stem}.txt", boxes, w, h)
                jsonl["train"].append({"image": name, "framing": "upload-turned", "items": [b[0] for b in boxes]})
    for sp, rs in jsonl.items():
        (data / f"{sp}.jsonl").write_text("".join(json.dumps(x) + "\n" for x in rs))
    # copy-paste frames: the training packs and the reference artwork on the train third and the brand's
    # own product-free training photos
    train_rows = [r for r in rows if r["split"] == "train"]
    sources = synth.crops([(r["path"], r["boxes"]) for r in train_rows])
    for name, p in up.references.items():
        if name in index:
            with Image.open(p) as im:
                sources.append(synth.Source(index[name], im.convert("RGB"), reference=True))
    bank = [photos.load(p) for p in photos.photos("train")]
    bank += [np.asarray(Image.open(r["path"]).convert("RGB")) for r in train_rows if not r["boxes"]]
    if not bank:
        raise SystemExit("onboard: no background photos: apt-get install -y opencv-doc")
    synth.write(data, "train", sources, bank, synth_frames, seed)
    names = [c["name"] for c in classes]
    (data / "data.yaml").write_text(f"path: {data.resolve()}\ntrain: images/train\nval: images/val\ntest: images/test\n"
                                    f"nc: {len(names)}\nnames: {json.dumps(names)}\n")
    # held-out packs pasted onto the photos of the same third (composite's own code, not synth's)
    comp = work / "composite"
    if comp.exists():
        shutil.rmtree(comp)
    for sp in ("val", "test"):
        held = [r for r in rows if r["split"] == sp]
        arts, art_cls = [], []
        for s in synth.crops([(r["path"], r["boxes"]) for r in held]):
            arts.append(s.image)
            art_cls.append(s.cls)
        bgs = photos.photos(sp)
        if not arts or not bgs:
            continue
        per_photo = max(1, int(np.ceil(COMPOSITE_PACKS[sp] / 1.4 / len(bgs))))
        img_dir, lbl_dir = comp / "images" / sp, comp / "labels" / sp
        img_dir.mkdir(parents=True, exist_ok=True)
        lbl_dir.mkdir(parents=True, exist_ok=True)
        out_rows = []
        for k, path in enumerate(bgs):
            rng = np.random.default_rng([seed, 7 if sp == "val" else 8, k])
            bg = Image.fromarray(photos.load(path))
            for j in range(per_photo):
                frame, packs, turns = C.compose(rng, bg, arts, 1 if rng.random() < 0.6 else 2,
                                                rotation="full" if j % 2 else "quarter")
                name = f"{Path(path.name).stem.replace('.', '_')}-{j}"
                frame.save(img_dir / f"{name}.jpg", quality=92)
                _write_labels(lbl_dir / f"{name}.txt", [(art_cls[a], *b) for a, *b in packs], *frame.size)
                out_rows.append({"image": f"{name}.jpg", "framing": "composite",
                                 "items": [art_cls[a] for a, *_ in packs], "quarter_turns": turns})
        (comp / f"{sp}.jsonl").write_text("".join(json.dumps(x) + "\n" for x in out_rows))
    counts = {}
    for r in rows:
        for c in {classes[b[0]]["name"] for b in r["boxes"]} or {"product-free"}:
            counts.setdefault(c, {s: 0 for s in split.SPLITS})[r["split"]] += 1
    out = {"counts": counts, "train_images": sum(1 for _ in (data / "images" / "train").iterdir()),
           "synth_frames": synth_frames, "sources": len(sources)}
    record.write_text(json.dumps(dict(out, key=key)))
    return dict(out, rows=rows, data=data, composite=comp)


def eval_sets(det, sha: str, built: dict, work: Path, which: str) -> dict:
    """Detections on the sets of one side: `val` (rule choice) or `test` (the report)."""
    data, comp, cache = built["data"], built["composite"], work / "detections"
    entries = lambda d, sp: E.split_entries(d, sp)  # noqa: E731
    out = {which: E.detect_set(det, sha, cache, which, entries(data, which))}
    out[f"photos-{which}"] = E.detect_set(det, sha, cache, f"photos-{which}",
                                          [(p.name, "photo", p, None) for p in photos.photos(which)])
    views = photos.views(which, work / "photo-views" / which)
    out[f"photo-views-{which}"] = E.detect_set(det, sha, cache, f"photo-views-{which}",
                                               [(p.name, "photo", p, None) for p in views])
    if (comp / f"{which}.jsonl").exists():
        out["composite-" + which] = E.detect_set(det, sha, cache, f"composite-{which}", entries(comp, which))
    return out


def choose(sets: dict, classes: list[dict]) -> dict:
    val_keys = [k for k in VAL_KEYS if sets.get(k)]
    choice = V.choose_rule(lambda f: [E.table(sets[k], classes, f) for k in val_keys],
                           extra_caps_at=lambda f: [E.table(sets["photo-views-val"], classes, f)])
    return {"choice": choice, "val_keys": val_keys}


def score_sets(sets: dict, classes: list[dict], choice: dict) -> dict:
    tg, tc, m, floor = choice["genuine"], choice["counterfeit"], choice["margin"], choice["confidence"]
    return {k: V.score(E.table(v, classes, floor), tg, tc, m) for k, v in sets.items() if v}


def thresholds(choice: dict) -> dict:
    return {"confidence": choice["confidence"], "iou": E.IOU, "genuine": choice["genuine"],
            "counterfeit": choice["counterfeit"], "margin": choice["margin"]}


def figures(s: dict) -> dict:
    keep = ("items", "right", "verdict_accuracy", "genuine_called_counterfeit", "counterfeit_called_genuine",
            "counterfeit_called_counterfeit", "missed", "phantom_items", "false_alarm_items",
            "scenes_with_stray_counterfeit", "scenes_with_packs")
    out = {k: (E.rate(s[k]) if isinstance(s[k], float) else s[k]) for k in keep if k in s}
    out["product_free_frames"] = V.product_free(s, ("empty", "photo"))
    return out


# ------------------------------------------------------------------------------------------- the stages

def train_run(built: dict, base_pt: Path, base_cfg: Path, work: Path, minutes: float, digest: str,
              base_sha: str) -> Path:
    """Trains (or reuses a finished run on the same data, base and settings); returns the run folder."""
    from . import train

    params = train.brand_hyperparameters("onboard")
    params.update(cfg=str(base_cfg), weights=str(base_pt), imgsz=IMGSZ, epochs=2000, time_budget_min=round(minutes, 2),
                  lr0=0.0005, device=os.environ.get("HALLMARK_DEVICE", "auto"), workers=2, patience=1000,
                  mosaic=1.0, scale=0.5)
    key = hashlib.sha256(json.dumps([digest, base_sha, {k: v for k, v in params.items()
                                                          if k not in ("weights", "cfg", "time_budget_min")}]).encode())
    run = work / f"train-{key.hexdigest()[:12]}"
    if (run / "training.json").exists() and (run / "best.pt").exists():
        print(f"[onboard] training: reusing {run.name}, a finished run on the same photos, labels, base and settings",
              flush=True)
        return run
    if run.exists():
        shutil.rmtree(run)
    os.environ.setdefault("TQDM_DISABLE", "1")
    argv, sys.argv = sys.argv, sys.argv[:1]  # yolov5 parses the process's arguments as its own
    try:
        train.train(built["data"], run, params)
    finally:
        sys.argv = argv
    return run


def candidates(run: Path) -> list[Path]:
    out = [run / "best.pt"]
    last = run / "run" / "weights" / "last.pt"
    if last.exists() and bundle.sha256_file(last) != bundle.sha256_file(out[0]):
        out.append(last)
    return out


def judge(weights: Path, built: dict, classes: list[dict], work: Path, run: Path) -> dict:
    from . import export
    from .detect import Detector

    onnx = export.export(weights, IMGSZ, work / f"{run.name}-{weights.stem}.onnx")
    sha = bundle.sha256_file(onnx)
    det = Detector(onnx)
    sets = eval_sets(det, sha, built, work, "val")
    chosen = choose(sets, classes)
    c = chosen["choice"]
    val = V.score(V.merge([E.table(sets[k], classes, c["confidence"]) for k in chosen["val_keys"]]),
                  c["genuine"], c["counterfeit"], c["margin"])
    refusals = E.refusals({"choice": c, "val": val})
    return {"weights": weights, "onnx": onnx, "sha": sha, "det": det, "val_sets": sets, "choice": c,
            "val_keys": chosen["val_keys"], "val": val, "refusals": refusals}


def _labels_of(built: dict, classes: list[dict], split_name: str) -> dict[str, list]:
    return {r["file"]: [(classes[c]["name"], [x1, y1, x2, y2]) for c, x1, y1, x2, y2 in r["boxes"]]
            for r in built["rows"] if r["split"] == split_name}


def advise(best: dict, built: dict, classes: list[dict]) -> list[str]:
    c = best["choice"]
    t = thresholds(c)
    frames = best["val_sets"]["val"] + best["val_sets"].get("composite-val", [])
    table = brand_report.confusion(frames, classes, t)
    rows_by_file = {r["file"]: r for r in built["rows"]}
    wrong, train = {}, {}
    for r in built["rows"]:
        for cls, x1, y1, x2, y2 in r["boxes"]:
            if r["split"] == "train":
                train.setdefault(classes[cls]["name"], []).append((r["path"], [x1, y1, x2, y2]))
    roles = [k["role"] for k in classes]
    for f in best["val_sets"]["val"]:
        s = V.scene_items(f["name"], f["kind"], V.at_floor(f["detections"], t["confidence"]), f["labels"], roles)
        for cls, j, box in zip(s.pack_classes, s.pack_item, s.pack_boxes):
            verdict = V.visual_verdict(s.items[j].g, s.items[j].c, V.Thresholds.of(t))[0] if j >= 0 else "missed"
            ok = verdict == "genuine" if roles[cls] == "genuine" else verdict in ("counterfeit", "inconclusive")
            if not ok and f["name"] in rows_by_file:
                wrong.setdefault(classes[cls]["name"], []).append((rows_by_file[f["name"]]["path"], list(box)))
    pf = V.product_free(V.score(E.table(best["val_sets"]["photo-views-val"], classes, c["confidence"]),
                                c["genuine"], c["counterfeit"], c["margin"]))
    return brand_report.advice(classes, built["counts"], table, wrong, train, pf)


def agent_scan(binary: Path, bundle_dir: Path, key, images: list[Path]) -> tuple[list[dict], float]:
    """`hallmark scan --model bundle_dir` over `images`, trusting the key's public half: (records, seconds)."""
    from cryptography.hazmat.primitives import serialization

    with tempfile.TemporaryDirectory() as tmp:
        pub = Path(tmp) / "publisher.pub.pem"
        pub.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                      serialization.PublicFormat.SubjectPublicKeyInfo))
        env = {k: v for k, v in os.environ.items() if not k.startswith("HALLMARK_")}
        env["HALLMARK_TRUST_PUBLIC_KEYS"] = str(pub)
        t = time.monotonic()
        out = subprocess.run([str(binary), "scan", "--model", str(bundle_dir), *map(str, images)], env=env,
                             capture_output=True, text=True, timeout=1800)
        seconds = time.monotonic() - t
    records = brand_report.scan_records(out.stdout)
    if out.returncode != 0 and not records:
        raise agent_check.AgentCheckError(f"hallmark scan failed: {out.stderr.strip()[-500:]}")
    return records, seconds


def _pct(v: float) -> str:
    return f"{100 * v:.1f}%"


def write_report(out: Path, brand_spec: upload.BrandSpec, doc: dict, best: dict, tests: dict, built: dict,
                 classes: list[dict], agent: dict | None, agent_seconds: float | None, base_rec: dict,
                 training: dict, minutes: float, gallery: list[str]) -> None:
    c, m = best["choice"], doc["metrics"]
    t = thresholds(c)
    conf = brand_report.confusion(best_test_frames(tests), classes, t)
    lines = [f"# {brand_spec.name} ({brand_spec.key}) — model revision {doc['revision']}", "",
             f"Onboarded from the brand's upload ({len(built['rows'])} photos, {m['upload']['format']}, content digest "
             f"`{m['upload']['digest'][:16]}…`) by `models/pipeline/onboard.sh` in {minutes:.1f} minutes. Every figure "
             "is the agent's per-item rule (`hallmark_models.verdicts`, the agent's own `hallmark scan` where it says so) "
             "on photos the training never saw.", "",
             "## Photos and splits", "",
             "Split by content (near-duplicate frames of one shoot kept together; `hallmark_models.split`):", "",
             "| class | train | val | test |", "|---|---|---|---|"]
    for name, k in sorted(built["counts"].items()):
        lines.append(f"| {name} | {k['train']} | {k['val']} | {k['test']} |")
    lines += ["", f"Training set: {built['train_images']} images: the training photos and their quarter turns, and "
              f"{built['synth_frames']} copy-paste frames (`hallmark_models.synth`: {built['sources']} packs, the brand's own "
              "crops and reference artwork, on the opencv-doc train third at any angle, light and scale; some frames with no pack).",
              "", f"Base detector: `{base_rec.get('brand')}` revision {base_rec.get('revision')} (model sha256 "
              f"`{str(base_rec.get('model_sha256'))[:16]}…`), recovered with BatchNorm calibrated on this training set; "
              f"classes kept from it: {', '.join(base_rec.get('classes_from_base') or []) or 'none'} (`hallmark_models.base`).",
              f"Training: {training.get('epochs')} epochs, {training.get('minutes')} min on {training.get('device')}; "
              f"checkpoint kept: {best['weights'].name} (of {', '.join(training.get('candidates', []))}), by validation under the caps.",
              "", "## The rule", "",
              f"Chosen on validation ({', '.join(best['val_keys'])}; the caps also on {len(best['val_sets']['photo-views-val'])} "
              f"product-free views of the validation photos), each cap on each set alone: item floor {t['confidence']}, "
              f"genuine {t['genuine']}, counterfeit {t['counterfeit']}, margin {t['margin']}. Validation: "
              f"{_pct(best['val']['verdict_accuracy'])} of {best['val']['items']} packs.", "",
              E.floors_line(c), "", "![trade-off](tradeoff.png)", "",
              "## Held-out test photos", ""]
    if agent:
        pf = agent["product_free_frames"]
        lines += [f"Scanned by the agent (`hallmark scan --model <bundle>`, {agent['images']} photos in "
                  f"{agent_seconds:.1f} s):", "",
                  "| figure | value |", "|---|---|",
                  f"| per-item accuracy | {_pct(agent['verdict_accuracy'])} ({agent['right']} of {agent['items']} packs) |",
                  f"| genuine → counterfeit | {_pct(agent['genuine_called_counterfeit'])} of {agent['genuine_items']} |",
                  f"| counterfeit → genuine | {_pct(agent['counterfeit_called_genuine'])} of {agent['counterfeit_items']} |",
                  f"| product-free photos with a counterfeit / genuine / any item | {pf['with_counterfeit']} / "
                  f"{pf['with_genuine']} / {pf['with_item']} of {pf['frames']} |", "",
                  "What each class's held-out packs were called by the agent:", ""]
        lines += brand_report.confusion_md(agent["per_class"], classes)
        lines.append("")
    lines += ["By the pipeline's copy of the rule, on every held-out set:", "",
              "| set | packs | accuracy | genuine → counterfeit | counterfeit → genuine | missed | product-free frames with a counterfeit / genuine / any item |",
              "|---|---|---|---|---|---|---|"]
    for key, what in (("test", "the brand's test photos"), ("composite-test", "its test packs pasted onto the opencv-doc test third"),
                      ("photos-test", "opencv-doc test third, product-free"),
                      ("photo-views-test", "views of those photos, product-free")):
        s = tests["scores"].get(key)
        if s:
            f = V.product_free(s, ("empty", "photo"))
            lines.append(f"| {what} | {s['items']} | {_pct(s['verdict_accuracy']) if s['items'] else '–'} | "
                         f"{_pct(s['genuine_called_counterfeit'])} | {_pct(s['counterfeit_called_genuine'])} | {s['missed']} | "
                         f"{f['with_counterfeit']} / {f['with_genuine']} / {f['with_item']} of {f['frames']} |")
    lines += ["", "Per class, the brand's test photos and the pasted test packs together (the pipeline's rule):", ""]
    lines += brand_report.confusion_md(conf, classes)
    if gallery:
        lines += ["", "## Held-out mistakes", "", "Labelled packs in white, the agent's items in their verdict's colour:", ""]
        lines += [f"![{g}]({g})" for g in gallery]
    lines += ["", "Reproduce: `models/pipeline/onboard.sh UPLOAD OUT --key KEY` on the same upload (the split, the "
              "training set and the composite sets are drawn from its content and fixed seeds).", ""]
    (out / "report.md").write_text("\n".join(lines))


def best_test_frames(tests: dict) -> list[dict]:
    return tests["sets"].get("test", []) + tests["sets"].get("composite-test", [])


def onboard(upload_dir: Path, out: Path, key_path: Path, budget_min: float = 40.0, previous: Path | None = None,
            base_bundle: Path | None = None, work: Path | None = None, synth_frames: int = SYNTH_FRAMES,
            binary: Path | None = None) -> dict:
    prog = Progress(budget_min)
    prog.stage("check", str(upload_dir))
    up, problems = upload.check(upload_dir)
    print(upload.report_problems(problems), flush=True)
    if upload.errors(problems):
        raise Refused(2)
    key = bundle.load_private(key_path)
    spec = up.brand
    counts = upload.class_photo_counts(up)
    classes = spec.classes(set(counts))
    prev_doc, keep = None, {}
    if previous is not None:
        prev_doc = bundle.verify(previous, key.public_key())
        if prev_doc["brand"] != spec.key:
            raise SystemExit(f"onboard: --previous is brand {prev_doc['brand']}, the upload is {spec.key}")
        if (previous / "split.json").is_file():
            keep = json.loads((previous / "split.json").read_text())["photos"]
    work = work or Path(str(out).rstrip("/") + ".work")
    work.mkdir(parents=True, exist_ok=True)
    prog.stage("split", f"{len(up.photos)} photos" + (f", {len(keep)} kept where revision {prev_doc['revision']} had them"
                                                      if keep else ""))
    thumbs = [split.thumbnail(p.path) for p in up.photos]
    splits = split.assign([p.sha256 for p in up.photos],
                          [[up.class_of(b) for b in p.boxes if up.class_of(b)] for p in up.photos], thumbs, keep)
    prog.stage("data", "training photos, copy-paste frames, validation and test sets")
    built = build_data(up, classes, splits, work, synth_frames=synth_frames)
    digest = content_digest(built["rows"])
    for name, k in sorted(built["counts"].items()):
        print(f"  {name}: train {k['train']}, val {k['val']}, test {k['test']} photos", flush=True)
    base_dir = previous or base_bundle or DEFAULT_BASE
    prog.stage("base", f"{base_dir} recovered, BatchNorm calibrated, given the brand's {len(classes)} classes")
    from . import base as B

    base_pt, base_cfg, base_rec = B.make(base_dir, work / "base", [c["name"] for c in classes],
                                         built["data"] / "images" / "train")
    minutes = max(3.0, prog.left() - EVAL_RESERVE_MIN)
    prog.stage("train", f"{minutes:.1f} min")
    run = train_run(built, base_pt, base_cfg, work, minutes, digest, base_rec["model_sha256"])
    record = json.loads((run / "training.json").read_text())
    prog.stage("choose", "the rule under the caps, for the best and the last checkpoint")
    judged = [judge(w, built, classes, work, run) for w in candidates(run)]
    for j in judged:
        c = j["choice"]
        print(f"  {j['weights'].name}: validation {_pct(j['val']['verdict_accuracy'])} of {j['val']['items']} packs, "
              f"rule {c['confidence']}, {c['genuine']}, {c['counterfeit']}, {c['margin']}"
              + (f"; REFUSED: {'; '.join(j['refusals'])}" if j["refusals"] else ""), flush=True)
    best = max(judged, key=lambda j: (not j["refusals"], j["val"]["verdict_accuracy"], -j["val"]["phantom_items"]))
    if best["refusals"]:
        print("onboard: nothing signed: " + "; ".join(best["refusals"]), flush=True)
        print("what would help:", flush=True)
        for line in advise(best, built, classes):
            print("  " + line, flush=True)
        raise Refused(3)
    c = best["choice"]
    det, sha = best["det"], best["sha"]
    test_sets = eval_sets(det, sha, built, work, "test")
    tests = {"sets": test_sets, "scores": score_sets(test_sets, classes, c)}
    prog.stage("bundle", str(out))
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    shutil.copy(best["onnx"], out / "model.onnx")
    if up.references:
        (out / "reference").mkdir()
        for name, p in up.references.items():
            shutil.copy(p, out / "reference" / f"{name}.png")
    (out / "split.json").write_text(json.dumps({"about": "which of the upload's photos (by SHA-256) each split holds: "
                                                         "a next revision keeps them where they are",
                                                "photos": {r["sha256"]: r["split"] for r in built["rows"]}},
                                               indent=1, sort_keys=True))
    val_table = V.merge([E.table(best["val_sets"][k], classes, c["confidence"]) for k in best["val_keys"]])
    test_table = E.table(test_sets["test"] + test_sets.get("composite-test", []), classes, c["confidence"])
    curves = E.tradeoff_curves(val_table, test_table, c["genuine"], c["margin"])
    revision = int(prev_doc["revision"]) + 1 if prev_doc else 1
    E.draw_tradeoff(out / "tradeoff.png", f"{spec.key} revision {revision}: accuracy and error rates against T_c "
                                          f"(genuine {c['genuine']}, margin {c['margin']})", curves[0], c["counterfeit"], curves[1])
    training = {"base": base_rec, "epochs": record.get("epochs_run"), "minutes": round(record.get("seconds", 0) / 60, 1),
                "device": record.get("device"), "sha256": record.get("sha256"), "run": run.name,
                "candidates": [j["weights"].name for j in judged], "kept": best["weights"].name}
    metrics = {
        "verdict_rule": "the agent's per-item rule (agent/src/verdict), visual evidence only",
        "upload": {"format": up.format, "photos": len(up.photos), "digest": digest,
                   "photos_per_class_and_split": built["counts"]},
        "validation": {"sets": best["val_keys"], **figures(best["val"]), "caps_met": bool(c["feasible"]),
                       "item_floors": [{"confidence": f, "genuine": g, "counterfeit": cf, "margin": mm, "caps_met": bool(ok),
                                        "right": r, "phantom_items": ph} for f, g, cf, mm, ok, r, ph in c.get("floors") or []]},
        "test": {k: figures(s) for k, s in tests["scores"].items()},
        "training": training,
    }
    doc = {"schema": bundle.SCHEMA, "brand": spec.key, "revision": revision,
           "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
           "model": {"file": "model.onnx", "sha256": bundle.sha256_file(out / "model.onnx"), "format": "yolov5",
                     "input": {"name": "images", "width": IMGSZ, "height": IMGSZ}, "output": {"name": "output0"}},
           "classes": classes, "gs1_prefixes": spec.gs1_prefixes, "thresholds": thresholds(c), "metrics": metrics}
    (out / "report.md").write_text("(being written)\n")
    doc = bundle.sign(out, doc, key)
    prog.stage("agent checks", "hallmark scan of the held-out photos, the self-test, hallmark models verify")
    agent = agent_seconds = None
    gallery: list[str] = []
    try:
        binary = binary or agent_check.agent_binary()
    except agent_check.AgentCheckError as e:
        binary = None
        print(f"onboard: WARNING: {e}: the bundle is signed but not checked by the agent", flush=True)
    test_images = sorted((built["data"] / "images" / "test").iterdir())
    labels = _labels_of(built, classes, "test")
    if binary is not None:
        records, agent_seconds = agent_scan(binary, out, key, test_images)
        agent = brand_report.agent_figures(records, labels, classes)
        by_name = {Path(r["image"]).name: r for r in records}
        (out / "selftest").mkdir()
        chosen, seen = [], set()
        for name in sorted(by_name, key=lambda n: hashlib.sha256(n.encode()).hexdigest()):
            r = by_name[name]
            kind = tuple(sorted({n for n, _ in labels.get(name, [])})) or ("product-free",)
            if name in agent["mistakes"] or kind in seen or "error" in r:
                continue
            seen.add(kind)
            shutil.copy(built["data"] / "images" / "test" / name, out / "selftest" / name)
            chosen.append({"file": name, "verdict": r["verdict"]})
            if len(chosen) >= 6:
                break
        (out / "selftest" / "expected.json").write_text(json.dumps({"images": chosen}, indent=1) + "\n")
        for k, name in enumerate(agent["mistakes"][:12]):
            rel = f"gallery/{k:02d}-{Path(name).stem}.jpg"
            brand_report.draw_mistake(built["data"] / "images" / "test" / name, by_name[name], labels.get(name, []),
                                      out / rel, Path(__file__).parent / "fonts" / "DejaVuSans.ttf")
            gallery.append(rel)
        doc["metrics"]["agent_scan_test"] = {k: (E.rate(v) if isinstance(v, float) else v) for k, v in agent.items()
                                             if k not in ("mistakes",)}
        doc["metrics"]["agent_scan_test"]["seconds"] = round(agent_seconds, 1)
    write_report(out, spec, doc, best, tests, built, classes, agent, agent_seconds, base_rec, training, prog.minutes(),
                 gallery)
    doc = bundle.sign(out, doc, key)
    if binary is not None:
        print(agent_check.verify(out, key, binary), flush=True)
    return {"doc": doc, "agent": agent, "agent_seconds": agent_seconds, "tests": tests, "best": best,
            "minutes": prog.minutes(), "out": out, "spec": spec, "work": work}


def next_steps(res: dict, key_path: Path) -> list[str]:
    spec, doc, out = res["spec"], res["doc"], res["out"]
    pub = spec.publish or {}
    url = pub.get("url_base", "https://models.example.com/hallmark")
    broker = pub.get("broker", "BROKER:8883")
    canaries = pub.get("canaries") or ["CANARY-THING"]
    rel = pub.get("out", "releases")
    lines = [f"signed {spec.key} revision {doc['revision']}: {out}", "next:"]
    lines += [f"  hallmark publish {out} --key {key_path} --url-base {url} --out {rel} --thing {t} --broker {broker}"
              f"   # canary {t}" for t in canaries]
    lines += [f"  hallmark fleet status --broker {broker}   # the canaries report {spec.key} revision {doc['revision']} active",
              f"  hallmark publish {out} --key {key_path} --url-base {url} --out {rel} --broker {broker}   # then the fleet"]
    return lines


def publish(res: dict, key_path: Path, binary: Path | None = None) -> None:
    """`[publish]` with `canaries` and `auto = true` in brand.toml: announce to each canary device."""
    pub = res["spec"].publish or {}
    if not (pub.get("auto") and pub.get("canaries") and pub.get("url_base")):
        return
    binary = binary or agent_check.agent_binary()
    for thing in pub["canaries"]:
        cmd = [str(binary), "publish", str(res["out"]), "--key", str(key_path), "--url-base", pub["url_base"],
               "--out", str(pub.get("out", res["work"] / "releases")), "--thing", thing]
        if pub.get("broker"):
            cmd += ["--broker", pub["broker"]]
        print(f"[onboard] publishing to canary {thing}: {' '.join(cmd)}", flush=True)
        subprocess.run(cmd, check=True)


def watch(inbox: Path, out_root: Path, key_path: Path, budget_min: float, poll_s: float = 10.0, once: bool = False,
          **kw) -> None:
    """Onboards each folder of `inbox` that holds a READY marker and no DONE or FAILED one, into
    out_root/<folder>; writes DONE (the bundle's revision) or FAILED (the exit status) beside READY."""
    print(f"[onboard] watching {inbox} for uploads marked READY", flush=True)
    while True:
        for up_dir in sorted(p for p in inbox.iterdir() if p.is_dir()):
            if not (up_dir / "READY").exists() or (up_dir / "DONE").exists() or (up_dir / "FAILED").exists():
                continue
            print(f"[onboard] {up_dir.name}: READY", flush=True)
            try:
                res = onboard(up_dir, out_root / up_dir.name, key_path, budget_min, **kw)
                for line in next_steps(res, key_path):
                    print(line, flush=True)
                publish(res, key_path)
                (up_dir / "DONE").write_text(f"revision {res['doc']['revision']}: {out_root / up_dir.name}\n")
            except SystemExit as e:
                (up_dir / "FAILED").write_text(f"exit status {e.code}\n")
            except Exception as e:  # noqa: BLE001 - one upload's failure must not stop the inbox
                (up_dir / "FAILED").write_text(f"{type(e).__name__}: {e}\n")
        if once:
            return
        time.sleep(poll_s)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Onboard a brand's upload into a signed bundle.")
    ap.add_argument("upload", type=Path, nargs="?", help="the upload folder (or, with --watch, the folder bundles go to)")
    ap.add_argument("out", type=Path, nargs="?", help="the bundle folder to write")
    ap.add_argument("--key", type=Path, required=True, help="the publisher's private key (PKCS#8 PEM)")
    ap.add_argument("--budget-min", type=float, default=40.0, help="wall-clock minutes for the whole onboarding")
    ap.add_argument("--previous", type=Path, help="the brand's previous bundle: train the next revision from it")
    ap.add_argument("--base", type=Path, help=f"the bundle whose detector a first revision starts from ({DEFAULT_BASE})")
    ap.add_argument("--work", type=Path, help="scratch folder (default: OUT.work); a finished training run there is reused")
    ap.add_argument("--synth", type=int, default=SYNTH_FRAMES, help="copy-paste training frames")
    ap.add_argument("--watch", type=Path, metavar="INBOX", help="onboard every upload folder of INBOX marked READY")
    ap.add_argument("--once", action="store_true", help="with --watch: one pass over the inbox, then exit")
    args = ap.parse_args(argv)
    if args.watch:
        root = args.upload or args.out
        if root is None:
            ap.error("--watch INBOX OUT_ROOT: where the bundles go")
        watch(args.watch, root, args.key, args.budget_min, once=args.once, base_bundle=args.base,
              synth_frames=args.synth)
        return
    if args.upload is None or args.out is None:
        ap.error("UPLOAD and OUT are required")
    try:
        res = onboard(args.upload, args.out, args.key, args.budget_min, args.previous, args.base, args.work, args.synth)
    except agent_check.AgentCheckError as e:
        print(f"onboard: the agent refuses the bundle: {e}", file=sys.stderr)
        raise SystemExit(4) from None
    a = res["agent"]
    if a:
        pf = a["product_free_frames"]
        print(f"held-out test photos, scanned by the agent ({a['images']} photos, {res['agent_seconds']:.1f} s): "
              f"{_pct(a['verdict_accuracy'])} of {a['items']} packs right; genuine → counterfeit "
              f"{_pct(a['genuine_called_counterfeit'])}, counterfeit → genuine {_pct(a['counterfeit_called_genuine'])}; "
              f"product-free photos with a counterfeit / genuine / any item {pf['with_counterfeit']} / {pf['with_genuine']} / "
              f"{pf['with_item']} of {pf['frames']}", flush=True)
    print(f"onboarding took {res['minutes']:.1f} min", flush=True)
    publish(res, args.key)
    for line in next_steps(res, args.key):
        print(line, flush=True)


if __name__ == "__main__":
    main()
