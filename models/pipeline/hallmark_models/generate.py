"""Writes a brand's dataset: YOLO splits (train / val / test), reference artwork and sample scenes.

    python -m hallmark_models.generate --brand northwind --out work/northwind/data \
        --train 200 --val 50 --test 60 [--reference models/northwind/reference] [--samples DIR --sample-count 6] \
        [--photo-backgrounds] [--strong-camera [--mixed-lighting] [--low-resolution] [--any-angle 0.7]
        [--hard-negatives]]

Each split draws from its own random stream, so the test split is never seen in training. Samples for
the README demo and the tests are copied from the held-out test split, with their labels.
`--photo-backgrounds` / `--strong-camera` change the TRAINING split only (`scenes.World`): the train third of
the real photos (`photos`) as backgrounds and as product-free hard negatives, and a stronger camera.
Validation and test stay as they were (the real-photo checks use the other thirds of the photos).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np

from . import artwork, scenes
from .brands import BRANDS, Brand, class_table

SPLIT_STREAM = {"train": 1, "val": 2, "test": 3}


def write_split(brand: Brand, out: Path, split: str, count: int, seed: int, size=(960, 720),
                world: scenes.World | None = None) -> list[dict]:
    rng = np.random.default_rng([seed, SPLIT_STREAM[split]])
    arts = scenes.ArtCache(brand, variants=4, serial_base=SPLIT_STREAM[split] * 100000)
    img_dir, lbl_dir = out / "images" / split, out / "labels" / split
    img_dir.mkdir(parents=True, exist_ok=True)
    lbl_dir.mkdir(parents=True, exist_ok=True)
    index = []
    for i in range(count):
        framing = scenes.pick_framing(rng, world)
        scene = scenes.compose(rng, arts, framing, size, world)
        stem = f"{brand.key}-{split}-{i:04d}"
        (img_dir / f"{stem}.jpg").write_bytes(scene.jpeg(int(rng.integers(40, 96))))
        (lbl_dir / f"{stem}.txt").write_text(scene.yolo_labels())
        index.append({"image": f"{stem}.jpg", "framing": framing, "items": [it.class_id for it in scene.items]})
    (out / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in index))
    return index


def add_quarter_turns(out: Path, split: str = "train", framings: tuple[str, ...] = ("conveyor",)) -> int:
    """Adds one copy of each scene of `framings` turned by a quarter, half or three-quarter turn (one
    per scene, by its index within its framing), with its labels turned to match. Conveyors carry packs
    at every angle, and a hand at the kiosk holds one sideways or upside down as often; a right-angle
    turn keeps axis-aligned boxes exact, which yolov5's free rotation would not."""
    from PIL import Image

    img_dir, lbl_dir = out / "images" / split, out / "labels" / split
    rows = [json.loads(line) for line in (out / f"{split}.jsonl").read_text().splitlines()]
    added = []
    index = {f: 0 for f in framings}
    for r in (r for r in rows if r["framing"] in framings):
        turns = 1 + index[r["framing"]] % 3  # quarter turns, counter-clockwise
        index[r["framing"]] += 1
        stem = Path(r["image"]).stem
        name = f"{stem}-turn{turns}.jpg"
        with Image.open(img_dir / r["image"]) as im:
            im.transpose([Image.ROTATE_90, Image.ROTATE_180, Image.ROTATE_270][turns - 1]).save(img_dir / name, quality=95)
        lines = []
        for line in (lbl_dir / f"{stem}.txt").read_text().splitlines():
            c, x, y, w, h = line.split()
            x, y, w, h = map(float, (x, y, w, h))
            for _ in range(turns):  # one counter-clockwise quarter turn: (x, y) -> (y, 1 - x)
                x, y, w, h = y, 1 - x, h, w
            lines.append(f"{c} {x:.6f} {y:.6f} {w:.6f} {h:.6f}")
        (lbl_dir / f"{Path(name).stem}.txt").write_text("".join(l + "\n" for l in lines))
        added.append({"image": name, "framing": r["framing"], "items": r["items"]})
    (out / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows + added))
    return len(added)


def write_data_yaml(brand: Brand, out: Path) -> Path:
    names = [c["name"] for c in brand.classes()]
    text = f"path: {out.resolve()}\ntrain: images/train\nval: images/val\ntest: images/test\n"
    text += f"nc: {len(names)}\nnames: {json.dumps(names)}\n"
    path = out / "data.yaml"
    path.write_text(text)
    return path


def write_reference(brand: Brand, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for cls, (product, role) in zip(brand.classes(), class_table(brand)):
        artwork.render(brand, product, role, serial=1).save(out / f"{cls['name']}.png", optimize=True)


def copy_samples(data: Path, out: Path, count: int) -> None:
    """The first `count` test scenes that hold packs (plus one empty scene, if any), with labels."""
    out.mkdir(parents=True, exist_ok=True)
    rows = [json.loads(line) for line in (data / "test.jsonl").read_text().splitlines()]
    chosen = [r for r in rows if r["items"]][:count] + [r for r in rows if not r["items"]][:1]
    for r in chosen:
        stem = Path(r["image"]).stem
        shutil.copy(data / "images" / "test" / r["image"], out / r["image"])
        shutil.copy(data / "labels" / "test" / f"{stem}.txt", out / f"{stem}.txt")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--brand", required=True, choices=sorted(BRANDS))
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--train", type=int, default=200)
    ap.add_argument("--val", type=int, default=50)
    ap.add_argument("--test", type=int, default=60)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--quarter-turns", action="store_true", help="add turned copies of conveyor training scenes")
    ap.add_argument("--turn-framings", default="conveyor",
                    help="with --quarter-turns: the framings whose scenes get a turned copy (comma-separated)")
    ap.add_argument("--photo-backgrounds", action="store_true",
                    help="training split: the train third of the opencv-doc photos as backgrounds and hard negatives")
    ap.add_argument("--strong-camera", action="store_true",
                    help="training split: colour casts, vignetting, more perspective and rotation, fingers over labels")
    ap.add_argument("--mixed-lighting", action="store_true",
                    help="training split (with --strong-camera): each pack with its own contrast and white balance")
    ap.add_argument("--low-resolution", action="store_true",
                    help="training split (with --strong-camera): half the frames from a sensor 2.5-6x coarser, upscaled")
    ap.add_argument("--any-angle", type=float, default=0.0, metavar="SHARE",
                    help="training split (with --strong-camera): this share of packs, every framing, turned to any angle "
                         "in [0, 360) (0: as before)")
    ap.add_argument("--hard-negatives", action="store_true",
                    help="training split (with --strong-camera): unlabelled coins, round, printed and textured objects in "
                         "every scene")
    ap.add_argument("--reference", type=Path)
    ap.add_argument("--samples", type=Path)
    ap.add_argument("--sample-count", type=int, default=6)
    args = ap.parse_args(argv)
    brand = BRANDS[args.brand]
    world = None
    turn_framings = tuple(f for f in args.turn_framings.split(",") if f)
    unknown = set(turn_framings) - set(scenes.WORLD_FRAMINGS)
    if unknown:
        raise SystemExit(f"--turn-framings: no framing {sorted(unknown)} (framings: {', '.join(scenes.WORLD_FRAMINGS)})")
    if args.mixed_lighting and not args.strong_camera:
        raise SystemExit("--mixed-lighting goes with --strong-camera")
    if args.low_resolution and not args.strong_camera:
        raise SystemExit("--low-resolution goes with --strong-camera")
    if (args.any_angle or args.hard_negatives) and not args.strong_camera:
        raise SystemExit("--any-angle and --hard-negatives go with --strong-camera")
    if not 0 <= args.any_angle <= 1:
        raise SystemExit("--any-angle: a share in [0, 1]")
    if args.photo_backgrounds or args.strong_camera:
        from . import photos

        bank = [photos.load(p) for p in photos.photos("train")] if args.photo_backgrounds else []
        if args.photo_backgrounds and not bank:
            raise SystemExit("--photo-backgrounds: no opencv-doc photos (apt-get install -y opencv-doc)")
        world = scenes.World(bank, args.strong_camera, args.mixed_lighting, args.low_resolution, args.any_angle,
                             args.hard_negatives)
    for split in ("train", "val", "test"):
        index = write_split(brand, args.out, split, getattr(args, split), args.seed,
                            world=world if split == "train" else None)
        per_class = np.bincount([c for r in index for c in r["items"]], minlength=len(brand.classes()))
        print(f"{brand.key} {split}: {len(index)} scenes, items per class {per_class.tolist()}")
    if args.quarter_turns:
        print(f"{brand.key} train: {add_quarter_turns(args.out, framings=turn_framings)} turned copies of "
              f"{', '.join(turn_framings)} scenes")
    write_data_yaml(brand, args.out)
    if args.reference:
        write_reference(brand, args.reference)
    if args.samples:
        copy_samples(args.out, args.samples, args.sample_count)


if __name__ == "__main__":
    main()
