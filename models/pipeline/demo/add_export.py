"""Demonstration 5's labeller: a device's `hallmark evidence export` (COCO, pre-labelled with the model's
boxes) corrected and added to the brand's upload, as a brand would do in Label Studio or CVAT.

    python models/pipeline/demo/add_export.py UPLOAD EXPORT TRUTH OUT

UPLOAD is the brand's COCO upload, EXPORT the export folder, TRUTH the field shots' true labels
(`kestrel.py --field` writes them, as the person labelling would give them). Each exported image gets the
true boxes of its frame in place of the pre-labels (a pre-label that is right stays right; a wrong class
or a missed pack is corrected); OUT is a new COCO upload holding both.
"""

import json
import re
import shutil
import sys
from pathlib import Path


def main() -> None:
    up, export, truth_path, out = map(Path, sys.argv[1:5])
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(up, out)
    doc = json.loads((up / "annotations.json").read_text())
    exp = json.loads((export / "annotations.json").read_text())
    truth = json.loads(truth_path.read_text())
    t_cats = {c["id"]: c["name"] for c in truth["categories"]}
    t_boxes = {}
    for im in truth["images"]:
        t_boxes[im["file_name"]] = [(t_cats[a["category_id"]], a["bbox"]) for a in truth["annotations"]
                                    if a["image_id"] == im["id"]]
    cats = {c["name"]: c["id"] for c in doc["categories"]}
    e_cats = {c["id"]: c["name"] for c in exp["categories"]}
    changed = kept = 0
    next_img = max(im["id"] for im in doc["images"]) + 1
    next_ann = max(a["id"] for a in doc["annotations"]) + 1
    for im in exp["images"]:
        frame = re.sub(r"^frame-[0-9a-f]{12}-", "", im["file_name"])  # frame-<digest of its path>-<file name>
        if frame not in t_boxes:
            continue  # an evidence picture whose frame is not one of the field shots
        name = f"field-{frame}"
        shutil.copy(export / "images" / im["file_name"], out / "images" / name)
        doc["images"].append({"id": next_img, "file_name": name, "width": im["width"], "height": im["height"]})
        pre = sorted(e_cats[a["category_id"]] for a in exp["annotations"] if a["image_id"] == im["id"])
        true = sorted(c for c, _ in t_boxes[frame])
        kept += pre == true
        changed += pre != true
        for cls, b in t_boxes[frame]:
            doc["annotations"].append({"id": next_ann, "image_id": next_img, "category_id": cats[cls], "bbox": b,
                                       "area": b[2] * b[3], "iscrowd": 0})
            next_ann += 1
        next_img += 1
    text = "{\n" + ",\n".join(f' "{k}": ' + (json.dumps(v) if not isinstance(v, list) else
                                             "[\n" + ",\n".join("  " + json.dumps(x) for x in v) + "\n ]")
                              for k, v in doc.items()) + "\n}\n"
    (out / "annotations.json").write_text(text)
    print(f"{out}: {kept + changed} exported frames added ({kept} pre-labels right as they were, {changed} corrected)")


if __name__ == "__main__":
    main()
