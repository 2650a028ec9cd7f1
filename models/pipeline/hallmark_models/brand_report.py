"""What an onboarding tells a brand: per-class figures (a confusion table of what each class's packs were
called), the agent's own scan of the held-out photos scored against their labels, a gallery of the
held-out mistakes drawn with their boxes, and, when the caps cannot be met, what would help, per class.
Evaluation and reports: no training, no signing.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from . import verdicts as V

COLUMNS = ("genuine", "genuine, other product", "counterfeit", "inconclusive", "missed")


def _call(it: V.Item, t: V.Thresholds, classes: list[dict]) -> tuple[str, str]:
    verdict, _, _ = V.visual_verdict(it.g, it.c, t)
    cls = it.g_class if verdict == "genuine" else it.c_class if verdict == "counterfeit" else it.anchor_class
    return verdict, classes[cls]["product"] if cls >= 0 else ""


def confusion(frames: list[dict], classes: list[dict], thresholds: dict) -> dict[str, dict[str, int]]:
    """Class -> what its labelled packs were called (COLUMNS), by the visual rule at `thresholds`, on
    frames as `evaluation.detect_set` gives them."""
    t = V.Thresholds.of(thresholds)
    roles = [c["role"] for c in classes]
    out = {c["name"]: dict.fromkeys(COLUMNS, 0) for c in classes}
    for f in frames:
        s = V.scene_items(f["name"], f["kind"], V.at_floor(f["detections"], t.confidence), f["labels"], roles)
        for cls, j in zip(s.pack_classes, s.pack_item):
            row = out[classes[cls]["name"]]
            if j < 0:
                row["missed"] += 1
                continue
            verdict, product = _call(s.items[j], t, classes)
            if verdict == "genuine" and product != classes[cls]["product"]:
                row["genuine, other product"] += 1
            else:
                row[verdict] += 1
    return out


def confusion_md(table: dict[str, dict[str, int]], classes: list[dict]) -> list[str]:
    role = {c["name"]: c["role"] for c in classes}
    lines = ["| pack (label) | " + " | ".join(COLUMNS) + " | right |", "|---" * (len(COLUMNS) + 2) + "|"]
    for name, row in table.items():
        n = sum(row.values())
        right = row["genuine"] if role[name] == "genuine" else row["counterfeit"] + row["inconclusive"]
        lines.append(f"| {name} | " + " | ".join(str(row[c]) for c in COLUMNS)
                     + f" | {right} of {n} ({100 * right / max(1, n):.1f}%) |")
    return lines


# ------------------------------------------------------------------------------------ the agent's scan

def _iou(a, b) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def match(labels: list[tuple[str, list[float]]], items: list[dict]) -> list[int]:
    """Per labelled pack (class, box) the index of the item it is (IoU >= 0.5, greedy, best first) or -1."""
    pairs = sorted(((_iou(b, it["box"]), i, j) for i, (_, b) in enumerate(labels) for j, it in enumerate(items)),
                   reverse=True)
    out, used = [-1] * len(labels), set()
    for v, i, j in pairs:
        if v >= V.MATCH_IOU and out[i] < 0 and j not in used:
            out[i], used = j, used | {j}
    return out


def agent_figures(records: list[dict], labels: dict[str, list[tuple[str, list[float]]]], classes: list[dict]) -> dict:
    """The agent's `hallmark scan` output (one record per image) scored as `verdicts.score` scores the
    visual rule: per-item accuracy, genuine -> counterfeit, counterfeit -> genuine, per class, and the
    product-free frames with a counterfeit call, a genuine call, any item. `labels`: image file name ->
    [(class name, [x1, y1, x2, y2])]."""
    by_name = {c["name"]: c for c in classes}
    per_class = {c["name"]: dict.fromkeys(COLUMNS, 0) for c in classes}
    n_g = n_c = right = g_c = c_g = 0
    free = {"frames": 0, "with_counterfeit": 0, "with_genuine": 0, "with_item": 0}
    mistakes = []
    for r in records:
        name = Path(r["image"]).name
        packs = labels.get(name, [])
        items = r.get("items") or []
        wrong = False
        if not packs:
            free["frames"] += 1
            kinds = {it["verdict"] for it in items}
            free["with_counterfeit"] += "counterfeit" in kinds
            free["with_genuine"] += "genuine" in kinds
            free["with_item"] += bool(items)
            wrong = bool(kinds & {"counterfeit", "genuine"})
        hit = match(packs, items)
        for (cls, _), j in zip(packs, hit):
            c = by_name[cls]
            row = per_class[cls]
            verdict = items[j]["verdict"] if j >= 0 else "missed"
            if verdict == "genuine" and items[j]["product"] != c["product"]:
                row["genuine, other product"] += 1
                ok = False
            else:
                row[verdict if verdict in row else "inconclusive"] += 1
                ok = verdict == "genuine" if c["role"] == "genuine" else verdict in ("counterfeit", "inconclusive")
            if c["role"] == "genuine":
                n_g += 1
                g_c += verdict == "counterfeit"
            else:
                n_c += 1
                c_g += verdict == "genuine"
            right += ok
            wrong |= not ok
        stray = [it for k, it in enumerate(items) if k not in hit and it["verdict"] in ("counterfeit", "genuine")]
        wrong |= any(it["verdict"] == "counterfeit" for it in stray)
        if wrong:
            mistakes.append(name)
    n = n_g + n_c
    return {"images": len(records), "items": n, "right": right, "verdict_accuracy": right / n if n else 1.0,
            "genuine_items": n_g, "counterfeit_items": n_c,
            "genuine_called_counterfeit": g_c / max(1, n_g), "counterfeit_called_genuine": c_g / max(1, n_c),
            "product_free_frames": free, "per_class": per_class, "mistakes": mistakes}


def scan_records(jsonl: str) -> list[dict]:
    return [json.loads(line) for line in jsonl.splitlines() if line.strip().startswith("{")]


# ------------------------------------------------------------------------------------------ the gallery

VERDICT_RGB = {"genuine": (22, 163, 74), "counterfeit": (220, 38, 38), "inconclusive": (217, 119, 6)}


def draw_mistake(image: Path, record: dict, packs: list[tuple[str, list[float]]], out: Path, font_path: Path,
                 long_side: int = 720) -> Path:
    """The photo with its labelled packs (white, black-lined, the label's class) and the agent's items (coloured
    by verdict, with verdict, confidence and product), scaled to `long_side`."""
    from PIL import Image, ImageDraw, ImageFont

    with Image.open(image) as im:
        rgb = im.convert("RGB")
    s = long_side / max(rgb.size)
    rgb = rgb.resize((round(rgb.size[0] * s), round(rgb.size[1] * s)))
    d = ImageDraw.Draw(rgb)
    try:
        font = ImageFont.truetype(str(font_path), 15)
    except OSError:
        font = ImageFont.load_default()
    found = match(packs, record.get("items") or [])
    for (cls, b), j in zip(packs, found):
        x1, y1, x2, y2 = (v * s for v in b)
        d.rectangle([x1, y1, x2, y2], outline=(255, 255, 255), width=2)
        d.rectangle([x1 + 2, y1 + 2, x2 - 2, y2 - 2], outline=(0, 0, 0), width=1)
        d.text((x1 + 4, y2 - 20), f"label: {cls}" + ("" if j >= 0 else " (not found)"), fill=(255, 255, 255), font=font, stroke_width=2, stroke_fill=(0, 0, 0))
    for it in record.get("items") or []:
        x1, y1, x2, y2 = (v * s for v in it["box"])
        colour = VERDICT_RGB.get(it["verdict"], (82, 82, 91))
        d.rectangle([x1, y1, x2, y2], outline=colour, width=4)
        d.text((x1 + 4, max(0, y1 - 18)), f"{it['verdict'].upper()} {it['confidence']:.2f} ({it['product']})",
               fill=colour, font=font, stroke_width=2, stroke_fill=(255, 255, 255))
    out.parent.mkdir(parents=True, exist_ok=True)
    rgb.save(out, quality=85)
    return out


# ------------------------------------------------------------------------------------- what would help

def _looks(image: Path, box) -> tuple[float, float, float]:
    """(brightness 0..255, warmth = mean red - mean blue, the box's longer side / the image's) of a pack."""
    from PIL import Image

    with Image.open(image) as im:
        rgb = np.asarray(im.convert("RGB").crop(tuple(int(v) for v in box)), np.float32)
        W, H = im.size
    if rgb.size == 0:
        return 0.0, 0.0, 0.0
    return float(rgb.mean()), float(rgb[..., 0].mean() - rgb[..., 2].mean()), max(box[2] - box[0], box[3] - box[1]) / max(W, H)


def advice(classes: list[dict], counts: dict[str, dict[str, int]], val_table: dict[str, dict[str, int]],
           wrong: dict[str, list[tuple[Path, list[float]]]], train: dict[str, list[tuple[Path, list[float]]]],
           product_free: dict[str, int]) -> list[str]:
    """One line per class that went wrong on validation, with its figures and what to add: more photos
    when it has few, and photos like the ones it got wrong (dim, bright, warm or cold light, small or
    close packs, compared with its training photos)."""
    lines = []
    for c in classes:
        name, row = c["name"], val_table.get(c["name"], {})
        n = sum(row.values())
        bad = row.get("genuine, other product", 0) + row.get("missed", 0) + (
            row.get("counterfeit", 0) + row.get("inconclusive", 0) if c["role"] == "genuine" else row.get("genuine", 0))
        # A counterfeit pack left 'scan again' is safe, but a counterfeit class never called COUNTERFEIT is
        # what refuses a rule ("the caps left it nothing to accuse with"): that must be said too.
        never_accused = c["role"] == "counterfeit" and n > 0 and not row.get("counterfeit")
        if never_accused:
            bad += row.get("inconclusive", 0)
        k = counts.get(name, {})
        photos = sum(k.values())
        if not bad and photos >= 30:
            continue
        what = []
        if c["role"] == "genuine" and row.get("counterfeit"):
            what.append(f"{row['counterfeit']} called counterfeit")
        if c["role"] == "counterfeit" and row.get("genuine"):
            what.append(f"{row['genuine']} called genuine")
        if c["role"] == "genuine" and row.get("inconclusive"):
            what.append(f"{row['inconclusive']} left 'scan again'")
        if never_accused and row.get("inconclusive"):
            what.append(f"{row['inconclusive']} left 'scan again', none called counterfeit")
        if row.get("genuine, other product"):
            what.append(f"{row['genuine, other product']} taken for another product")
        if row.get("missed"):
            what.append(f"{row['missed']} not found")
        hints = []
        if photos < 30:
            hints.append(f"add photos (30 or more; it has {photos})")
        if never_accused:
            hints.append("train longer (a bigger --budget-min, or a GPU) so the model tells it apart with "
                         "confidence; more photos of it help the same way")
        if wrong.get(name) and train.get(name):
            w = np.array([_looks(p, b) for p, b in wrong[name][:20]])
            t = np.array([_looks(p, b) for p, b in train[name][:60]])
            (wb, ww, ws), (tb, tw, ts) = np.median(w, 0), np.median(t, 0)
            if wb < 0.8 * tb:
                hints.append("add photos in dim light")
            elif wb > 1.2 * tb:
                hints.append("add photos in bright light")
            if ww - tw > 12:
                hints.append("add photos under warm light")
            elif ww - tw < -12:
                hints.append("add photos under cold light")
            if ws < 0.75 * ts:
                hints.append("add photos from further away (small packs)")
            elif ws > 1.33 * ts:
                hints.append("add close-ups")
            if len(hints) == (photos < 30):
                names = ", ".join(sorted({p.name for p, _ in wrong[name]})[:4])
                hints.append(f"add photos like the ones it got wrong ({names})")
        lines.append(f"{name}: {photos} photos ({k.get('train', 0)} train, {k.get('val', 0)} val, {k.get('test', 0)} test); "
                     f"on validation {n} packs" + (f", {', '.join(what)}" if what else ", none wrong")
                     + (f"; {'; '.join(hints)}" if hints else ""))
    if product_free.get("frames") and (product_free.get("with_counterfeit") or product_free.get("with_genuine")):
        lines.append(f"product-free views: {product_free['with_counterfeit']} of {product_free['frames']} validation views "
                     f"got a COUNTERFEIT and {product_free['with_genuine']} a GENUINE; add photos of your counters, "
                     "shelves and belts with no pack in view")
    return lines
