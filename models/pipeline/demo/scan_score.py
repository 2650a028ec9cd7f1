"""Demonstrations 2, 3 and 5: the agent's own verdicts on a brand's held-out photos, scored against their
labels. Reads the JSON lines `hallmark scan --model BUNDLE <photos>` printed (stdin or a file) and the labels
onboarding laid out in WORK/data (YOLO files beside the test photos), and prints per-item accuracy, the two
errors, product-free photos with a call, and each class's row.

    HALLMARK_TRUST_PUBLIC_KEYS=PUB hallmark scan --model OUT WORK/data/images/test/* > scan.jsonl
    python models/pipeline/demo/scan_score.py OUT WORK scan.jsonl [--only PREFIX]
"""

import argparse
import json
import sys
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hallmark_models import brand_report  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("bundle", type=Path)
    ap.add_argument("work", type=Path)
    ap.add_argument("scan", type=Path)
    ap.add_argument("--split", default="test")
    ap.add_argument("--only", help="score only the photos whose upload name starts with this (e.g. field-)")
    args = ap.parse_args()
    classes = json.loads((args.bundle / "manifest.json").read_text())["classes"]
    names = [c["name"] for c in classes]
    rows = {json.loads(line)["image"]: json.loads(line).get("source", "")
            for line in (args.work / "data" / f"{args.split}.jsonl").read_text().splitlines()}
    records = brand_report.scan_records(args.scan.read_text())
    labels = {}
    for r in records:
        name = Path(r["image"]).name
        lab = args.work / "data" / "labels" / args.split / f"{Path(name).stem}.txt"
        with Image.open(r["image"]) as im:
            w, h = im.size
        labels[name] = [(names[int(c)], [(float(x) - float(bw) / 2) * w, (float(y) - float(bh) / 2) * h,
                                         (float(x) + float(bw) / 2) * w, (float(y) + float(bh) / 2) * h])
                        for c, x, y, bw, bh in (line.split() for line in lab.read_text().splitlines() if line.strip())]
    if args.only:
        records = [r for r in records if Path(rows.get(Path(r["image"]).name, "")).name.startswith(args.only)]
    f = brand_report.agent_figures(records, labels, classes)
    pf = f["product_free_frames"]
    print(f"{f['images']} photos, {f['items']} packs: accuracy {100 * f['verdict_accuracy']:.1f}% ({f['right']} right); "
          f"genuine → counterfeit {100 * f['genuine_called_counterfeit']:.1f}% of {f['genuine_items']}, "
          f"counterfeit → genuine {100 * f['counterfeit_called_genuine']:.1f}% of {f['counterfeit_items']}; "
          f"product-free photos with a counterfeit / genuine / any item {pf['with_counterfeit']} / {pf['with_genuine']} / "
          f"{pf['with_item']} of {pf['frames']}")
    print("\n".join(brand_report.confusion_md(f["per_class"], classes)))


if __name__ == "__main__":
    main()
