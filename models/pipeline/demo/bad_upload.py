"""A bad upload for demonstration 4: a copy of a good COCO upload (`kestrel.py`) with one of each problem
the check must find: an unreadable image, a duplicate image, a box outside its image, an empty box, a
label naming no class of brand.toml, a product with fewer than 10 photos, a GTIN with a bad check digit
and one outside the brand's GS1 prefixes.

    python models/pipeline/demo/bad_upload.py models/work/onboard/kestrel-coco models/work/onboard/kestrel-bad
    models/pipeline/onboard.sh models/work/onboard/kestrel-bad /tmp/never --key KEY    # exit 2, nothing trained
"""

import json
import shutil
import sys
from pathlib import Path


def main() -> None:
    src, out = Path(sys.argv[1]), Path(sys.argv[2])
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(src, out)
    doc = json.loads((out / "annotations.json").read_text())
    cat = {c["name"]: c["id"] for c in doc["categories"]}
    anns = doc["annotations"]
    images = {im["id"]: im for im in doc["images"]}
    # decaf: keep 6 of its photos' boxes (the others become... unlabelled photos would read as product-free,
    # so drop those images altogether)
    decaf_images = sorted({a["image_id"] for a in anns if a["category_id"] == cat["decaf"]})
    gone = set(decaf_images[6:])
    doc["images"] = [im for im in doc["images"] if im["id"] not in gone]
    anns = [a for a in anns if a["image_id"] not in gone]
    others = [a for a in anns if a["category_id"] != cat["decaf"]]
    w = images[others[0]["image_id"]]["width"]
    others[0]["bbox"] = [w - 50, 20, 200, 80]  # outside the image
    others[1]["bbox"] = [30, 40, 0, 25]  # empty
    doc["categories"].append({"id": 99, "name": "lungo"})
    others[2]["category_id"] = 99  # a label of no class
    doc["annotations"] = anns
    names = [im["file_name"] for im in doc["images"]]
    (out / "images" / names[10]).write_bytes((out / "images" / names[11]).read_bytes())  # a duplicate
    (out / "images" / names[12]).write_bytes(b"\xff\xd8\xff\xe0 truncated")  # unreadable
    text = "{\n" + ",\n".join(f' "{k}": [\n' + ",\n".join("  " + json.dumps(x) for x in v) + "\n ]"
                              for k, v in doc.items() if isinstance(v, list)) + "\n}\n"
    (out / "annotations.json").write_text(text)
    toml = (out / "brand.toml").read_text()
    lines = toml.splitlines()
    k = next(i for i, l in enumerate(lines) if l.startswith("gtins") and "decaf" in "\n".join(lines[max(0, i - 3):i]))
    g = lines[k].split('"')[1]
    lines[k] = f'gtins = ["{g[:-1]}{(int(g[-1]) + 1) % 10}"]'  # bad check digit
    k = next(i for i, l in enumerate(lines) if l.startswith("gtins"))
    lines[k] = lines[k].rstrip("]") + ', "04006381333931"]'  # a GTIN of another company's prefix
    (out / "brand.toml").write_text("\n".join(lines) + "\n")
    for p in (out / "images").iterdir():
        if p.name not in names:
            p.unlink()
    print(f"{out}: {len(doc['images'])} photos with eight kinds of problem")


if __name__ == "__main__":
    main()
