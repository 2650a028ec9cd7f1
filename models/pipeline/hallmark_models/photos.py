"""The real photographs the pipeline may use, and their one fixed split.

Debian's `opencv-doc` ships about a hundred example images under /usr/share/doc/opencv-doc/examples/data/
(`apt-get install -y opencv-doc`). The real photos among them (fruit, people, rooms, buildings, a box in a
cluttered scene, calibration boards, ...; drawn test patterns, logos and plots left out) are split by a
hash of their file name into thirds (ordered by the SHA-256 of the name, cut in three):
- `train`: backgrounds and product-free hard negatives for training (the only real photos training sees);
- `val`: product-free negatives for the threshold choice;
- `test`: product-free negatives and composite backgrounds for the honest figures (`composite`).
Every other photo collection (the yolov5 wheel's bus.jpg / zidane.jpg, ...) stays out of training and of
the threshold choice, so that tests on unseen photos stay honest.

    python -m hallmark_models.photos            # lists the split
    python -m hallmark_models.photos --set ../work/product-free --split test [--views 8] [--extra bus.jpg ...]
                                                # a product-free set for hallmark_models.score
"""

from __future__ import annotations

import gzip
import hashlib
import io
from pathlib import Path

import numpy as np

ROOT = Path("/usr/share/doc/opencv-doc/examples/data")
SPLITS = ("train", "val", "test")
# Drawn or rendered test patterns, logos, text pages, plots and label maps: not photographs.
NOT_PHOTOS = frozenset({
    "LinuxLogo.jpg", "WindowsLogo.jpg", "aloeGT.png", "cards.png", "chessboard.png", "detect_blob.png",
    "digits.png", "ellipses.jpg", "gradient.png", "imageTextN.png", "imageTextR.png", "mask.png", "ml.png",
    "notes.png", "opencv-logo-white.png", "opencv-logo.png", "pic1.png", "pic2.png", "pic3.png", "pic4.png",
    "pic5.png", "pic6.png", "templ.png", "tmpl.png",
})
MIN_SIDE = 180  # smaller files are icons and templates


def name_hash(name: str) -> str:
    """SHA-256 of a photo's file name (without a .gz suffix): the only thing its split depends on."""
    base = name[:-3] if name.endswith(".gz") else name
    return hashlib.sha256(base.encode()).hexdigest()


def assign(names: list[str]) -> dict[str, str]:
    """Split names into thirds: ordered by name_hash, the first third train, then val, then test."""
    order = sorted(names, key=name_hash)
    return {n: SPLITS[k * 3 // len(order)] for k, n in enumerate(order)}


def _is_image_name(name: str) -> bool:
    base = name[:-3] if name.endswith(".gz") else name
    return base.lower().endswith((".jpg", ".jpeg", ".png"))


def candidates(root: Path = ROOT) -> list[Path]:
    """Image files directly under root (compressed ones too), minus NOT_PHOTOS, sorted by name."""
    if not root.is_dir():
        return []
    out = []
    for p in sorted(root.iterdir()):
        base = p.name[:-3] if p.name.endswith(".gz") else p.name
        if p.is_file() and _is_image_name(p.name) and base not in NOT_PHOTOS:
            out.append(p)
    return out


def load(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB of a photo, gzip or not."""
    from PIL import Image

    data = path.read_bytes()
    if path.name.endswith(".gz"):
        data = gzip.decompress(data)
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


def photos(split: str, root: Path = ROOT) -> list[Path]:
    """The real photos of one split (sorted by name); empty when opencv-doc is not installed."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}")
    from PIL import Image

    usable = []
    for p in candidates(root):
        try:
            if p.name.endswith(".gz"):
                h, w = load(p).shape[:2]
            else:
                with Image.open(p) as im:
                    w, h = im.size
        except OSError:
            continue
        if min(w, h) >= MIN_SIDE:
            usable.append(p)
    split_by_name = assign([p.name for p in usable]) if usable else {}
    return [p for p in usable if split_by_name[p.name] == split]


def views(split: str, out: Path, per_photo: int = 8, seed: int = 5, root: Path = ROOT) -> list[Path]:
    """Product-free views of a split's photos, written as PNG under `out`: per photo, `per_photo` crops
    (45–100% of each side, anywhere), each turned by a random quarter turn, scaled to a long side of
    480–1280 px, with a white-balance error, a gamma, sensor noise and a JPEG pass — what a camera on a
    kiosk or a belt sees of a room or a shelf with no pack in view. More negatives than the photos
    alone: a background that draws a counterfeit box in one framing may not in another (a 1% cap on 22
    photos cannot see a 5% risk). Deterministic: seeded per photo by its name. Written once: `views.json`
    in `out` records what was made, and the same call later returns those files as they are."""
    import json

    from PIL import Image

    sources = photos(split, root)
    index = out / "views.json"
    made = {"per_photo": per_photo, "seed": seed, "photos": [p.name for p in sources]}
    if index.is_file():
        old = json.loads(index.read_text())
        if {k: old.get(k) for k in made} == made and all((out / f).is_file() for f in old.get("files", [])):
            return [out / f for f in old["files"]]
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for p in sources:
        base = p.name[:-3] if p.name.endswith(".gz") else p.name
        rng = np.random.default_rng([seed, int(name_hash(base)[:12], 16)])
        rgb = load(p)
        h, w = rgb.shape[:2]
        for j in range(per_photo):
            cw, ch = int(w * rng.uniform(0.45, 1.0)), int(h * rng.uniform(0.45, 1.0))
            x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
            view = np.rot90(rgb[y0:y0 + ch, x0:x0 + cw], int(rng.integers(0, 4)))
            long_side = int(rng.integers(480, 1281))
            scale = long_side / max(view.shape[:2])
            im = Image.fromarray(np.ascontiguousarray(view)).resize(
                (max(1, round(view.shape[1] * scale)), max(1, round(view.shape[0] * scale))), Image.BILINEAR)
            x = np.asarray(im, dtype=np.float32) / 255.0
            x = np.clip(x * np.clip(rng.normal(1.0, 0.08, 3), 0.8, 1.2), 0, 1) ** rng.uniform(0.7, 1.4)
            x = x * 255.0 + rng.normal(0, rng.uniform(0, 6), x.shape)
            buf = io.BytesIO()
            Image.fromarray(np.clip(x, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=int(rng.integers(40, 96)))
            buf.seek(0)
            dst = out / f"{Path(base).stem}-view{j}.png"
            with Image.open(buf) as jpeg:
                jpeg.convert("RGB").save(dst)
            paths.append(dst)
    index.write_text(json.dumps(dict(made, files=[q.name for q in paths])))
    return paths


def product_free_set(out: Path, split: str = "test", views_per_photo: int = 0, extra: tuple[Path, ...] = (),
                     root: Path = ROOT) -> list[dict]:
    """A labelled set of product-free frames in the layout `generate` and `composite` write (images/<split>,
    labels/<split> with empty label files, <split>.jsonl, framing `photo`), so `hallmark_models.score` reads
    it as any set: a split's photos (or, with `views_per_photo`, that many `views` of each instead) plus
    `extra` photo files (say, the yolov5 wheel's bus.jpg and zidane.jpg: never used for training or for a
    threshold choice). Each row's `source` says where the frame came from. Nothing on these frames is a
    pack, so every item a model makes there is one a person looks at for nothing."""
    import json
    import shutil

    sources = views(split, out / "views" / split, views_per_photo, root=root) if views_per_photo else photos(split, root)
    img_dir, lbl_dir = out / "images" / split, out / "labels" / split
    img_dir.mkdir(parents=True, exist_ok=True)
    lbl_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for src, tag in [(q, f"opencv-doc {split}" + (" view" if views_per_photo else "")) for q in sources] + \
                    [(Path(q), "extra") for q in extra]:
        base = src.name[:-3] if src.name.endswith(".gz") else src.name
        name = f"{'extra-' if tag == 'extra' else ''}{Path(base).stem}{Path(base).suffix.lower()}"
        if src.name.endswith(".gz"):
            from PIL import Image

            Image.fromarray(load(src)).save(img_dir / name)
        else:
            shutil.copy(src, img_dir / name)
        (lbl_dir / f"{Path(name).stem}.txt").write_text("")
        rows.append({"image": name, "framing": "photo", "items": [], "source": tag})
    if len({r["image"] for r in rows}) != len(rows):
        raise ValueError("two frames of the product-free set share a name")
    (out / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return rows


def main(argv: list[str] | None = None) -> None:
    import argparse

    ap = argparse.ArgumentParser(description="List the photo split, or write a product-free set of one split.")
    ap.add_argument("--set", type=Path, help="write a product-free set here (for hallmark_models.score)")
    ap.add_argument("--split", choices=SPLITS, default="test")
    ap.add_argument("--views", type=int, default=0,
                    help="that many product-free views (crops, turns, camera effects) of each photo instead of the photos")
    ap.add_argument("--extra", type=Path, nargs="*", default=[],
                    help="more product-free photo files (never used for training or for a threshold choice)")
    args = ap.parse_args(argv)
    if args.set is None:
        for split in SPLITS:
            names = [p.name for p in photos(split)]
            print(f"{split} ({len(names)}): {' '.join(names)}")
        return
    if args.split == "train":
        ap.error("the train third is what training sees: a product-free set of it measures nothing")
    rows = product_free_set(args.set, args.split, args.views, tuple(args.extra))
    if not rows:
        raise SystemExit("no photos: apt-get install -y opencv-doc")
    print(f"{args.set}: {len(rows)} product-free frames ({args.split}"
          + (f", {args.views} views per photo" if args.views else "") + f"; {len(args.extra)} extra)")


if __name__ == "__main__":
    main()
