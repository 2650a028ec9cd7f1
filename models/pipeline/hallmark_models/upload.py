"""A brand's upload (models/README.md, "The upload"): `brand.toml`, its labelled photos as a COCO, YOLO or
Pascal VOC export (found by content), optional `reference/<class>.png`. Reads any of the three into one
record (`Upload`: the brand, its photos and their boxes, each with the file and line it came from),
checks it (`check`: every problem at once, by file and line) and writes it back in any format
(`write`: what `python -m hallmark_models.upload convert` does). Data only: no model, no training.

    python -m hallmark_models.upload check UPLOAD
    python -m hallmark_models.upload convert UPLOAD OUT --format coco|yolo|voc
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import tomllib
import xml.parsers.expat
from dataclasses import dataclass, field
from pathlib import Path

from . import gs1

FORMATS = ("coco", "yolo", "voc")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
KEY = re.compile(r"[a-z0-9][a-z0-9_-]*")
MIN_PHOTOS = 10  # a class with fewer cannot be split into training, validation and test photos
WARN_PHOTOS = 30
# A box may stray this far outside its image (labelling tools round); further is an error.
EDGE_SLACK_PX = 2.0
MIN_BOX_PX = 2.0


@dataclass
class Problem:
    file: str
    line: int | None
    message: str
    error: bool = True

    def __str__(self) -> str:
        at = f"{self.file}:{self.line}" if self.line else self.file
        return f"{'error' if self.error else 'warning'}: {at}: {self.message}"


@dataclass
class Box:
    label: str
    x1: float
    y1: float
    x2: float
    y2: float
    file: str = ""
    line: int | None = None


@dataclass
class Photo:
    name: str  # the image's path in the upload, "/"-separated
    path: Path
    boxes: list[Box] = field(default_factory=list)
    file: str = ""  # where it is declared
    line: int | None = None
    width: int = 0  # 0 until read
    height: int = 0
    sha256: str = ""


@dataclass
class Product:
    key: str
    name: str
    gtins: list[str]
    labels: dict[str, str]  # role -> the label name the photos use
    line: int | None = None  # its [[products]] table in brand.toml


@dataclass
class BrandSpec:
    key: str
    name: str
    gs1_prefixes: list[str]
    products: list[Product]
    publish: dict = field(default_factory=dict)

    def label_classes(self) -> dict[str, str]:
        """Label name as the photos use it -> class name (`<product>` or `<product>-counterfeit`)."""
        out = {}
        for p in self.products:
            for role in ("genuine", "counterfeit"):
                cls = p.key if role == "genuine" else f"{p.key}-counterfeit"
                out[p.labels.get(role, cls)] = cls
        return out

    def classes(self, present: set[str]) -> list[dict]:
        """The manifest's class table: per product its genuine class, and its counterfeit class when the
        upload has counterfeit photos of it (a product with genuine photos only has no counterfeit class:
        its packs are GENUINE or "scan again", and its barcode still catches a foreign or copied code)."""
        out = []
        for p in self.products:
            for role in ("genuine", "counterfeit"):
                name = p.key if role == "genuine" else f"{p.key}-counterfeit"
                if role == "genuine" or name in present:
                    out.append({"id": len(out), "name": name, "product": p.name,
                                "gtin": p.gtins[0] if p.gtins else "", "role": role})
        return out


@dataclass
class Upload:
    root: Path
    format: str
    brand: BrandSpec | None
    photos: list[Photo]
    references: dict[str, Path] = field(default_factory=dict)

    def class_of(self, box: Box) -> str | None:
        return self.brand.label_classes().get(box.label) if self.brand else None


def _line_of(text: str, needle: str, start: int = 0) -> int | None:
    k = text.find(needle, start)
    return text.count("\n", 0, k) + 1 if k >= 0 else None


def gtin14(g: str) -> str | None:
    """A GTIN-8/12/13/14 as 14 digits, None if it is not digits of such a length."""
    g = str(g).strip()
    return g.zfill(14) if g.isdigit() and len(g) in (8, 12, 13, 14) else None


# ------------------------------------------------------------------------------------------ brand.toml

def read_brand(path: Path, problems: list[Problem]) -> BrandSpec | None:
    where = path.name
    if not path.is_file():
        problems.append(Problem(where, None, "missing: the upload needs brand.toml ([brand] and [[products]])"))
        return None
    text = path.read_text(errors="replace")
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"line (\d+)", str(e))
        problems.append(Problem(where, int(m.group(1)) if m else None, f"not valid TOML: {e}"))
        return None
    b = doc.get("brand")
    if not isinstance(b, dict):
        problems.append(Problem(where, None, "no [brand] table"))
        return None
    key, name = str(b.get("key", "")), str(b.get("name", ""))
    if not KEY.fullmatch(key):
        problems.append(Problem(where, _line_of(text, "key"), f"brand key {key!r} must match [a-z0-9][a-z0-9_-]*"))
    if not name:
        problems.append(Problem(where, _line_of(text, "[brand]"), "brand name is empty"))
    prefixes = b.get("gs1_prefixes")
    if not isinstance(prefixes, list) or not prefixes:
        problems.append(Problem(where, _line_of(text, "gs1_prefixes") or _line_of(text, "[brand]"),
                                "gs1_prefixes is empty: a bundle without one calls every barcoded pack counterfeit"))
        prefixes = []
    prefixes = [str(p) for p in prefixes]
    for p in prefixes:
        if not (p.isdigit() and 4 <= len(p) <= 12):
            problems.append(Problem(where, _line_of(text, f'"{p}"'), f"gs1_prefixes: {p!r} is not a GS1 company "
                                                                    "prefix (4 to 12 digits)"))
    products = []
    raw = doc.get("products")
    if not isinstance(raw, list) or not raw:
        problems.append(Problem(where, None, "no [[products]]"))
        raw = []
    seen = set()
    pos = 0
    for i, p in enumerate(raw):
        at = _line_of(text, "[[products]]", pos)
        pos = text.find("[[products]]", pos) + 1 if at else pos
        pkey = str(p.get("key", ""))
        if not KEY.fullmatch(pkey) or pkey.endswith("-counterfeit"):
            problems.append(Problem(where, at, f"product {i + 1}: key {pkey!r} must match [a-z0-9][a-z0-9_-]* "
                                               "and not end in -counterfeit"))
        if pkey in seen:
            problems.append(Problem(where, at, f"product key {pkey!r} used twice"))
        seen.add(pkey)
        gtins = []
        for g in p.get("gtins", []) or []:
            line = _line_of(text, str(g), max(pos - 1, 0)) or at
            g14 = gtin14(g)
            if g14 is None:
                problems.append(Problem(where, line, f"{pkey}: GTIN {g!r} is not 8, 12, 13 or 14 digits"))
                continue
            if not gs1.is_valid(g14):
                problems.append(Problem(where, line, f"{pkey}: GTIN {g} has a bad check digit "
                                                     f"(expected {gs1.check_digit(g14[:-1])})"))
            if prefixes and not any(g14[1:].startswith(pr) for pr in prefixes):
                problems.append(Problem(where, line, f"{pkey}: GTIN {g} is outside the brand's GS1 prefixes "
                                                     f"({', '.join(prefixes)}): the agent would call its packs counterfeit"))
            gtins.append(g14)
        if not p.get("gtins"):
            problems.append(Problem(where, at, f"{pkey}: no gtins: a barcode could not tell its packs apart", error=False))
        elif len(gtins) > 1:
            problems.append(Problem(where, at, f"{pkey}: {len(gtins)} GTINs; a bundle names one GTIN per class "
                                               f"(the first, {gtins[0]}): packs carrying another read 'unknown GTIN, "
                                               "scan again'", error=False))
        labels = p.get("classes") or {}
        roles = {"genuine", "counterfeit"}
        if isinstance(labels, dict) and labels and not set(labels) <= roles and set(map(str, labels.values())) <= roles:
            labels = {str(v): k for k, v in labels.items()}  # { "Espresso" = "genuine" }: label -> role
        if not isinstance(labels, dict) or set(labels) - roles:
            problems.append(Problem(where, at, f"{pkey}: classes maps genuine and counterfeit to label names, "
                                               f"e.g. {{ genuine = \"Espresso\", counterfeit = \"Espresso (fake)\" }} (or label = role)"))
            labels = {}
        products.append(Product(pkey, str(p.get("name") or pkey), gtins, {k: str(v) for k, v in labels.items()}, at))
    publish = doc.get("publish") if isinstance(doc.get("publish"), dict) else {}
    return BrandSpec(key, name, prefixes, products, publish)


# --------------------------------------------------------------------------------------------- formats

def _json_items(text: str, key: str) -> list[tuple[dict, int]]:
    """The elements of the top-level array `key` of a JSON object's text, each with the line it starts on
    (json.load keeps no positions)."""
    m = re.search(r'"%s"\s*:\s*\[' % re.escape(key), text)
    if not m:
        return []
    dec = json.JSONDecoder()
    k, out = m.end(), []
    while True:
        while k < len(text) and text[k] in " \t\r\n,":
            k += 1
        if k >= len(text) or text[k] == "]":
            return out
        obj, end = dec.raw_decode(text, k)
        out.append((obj, text.count("\n", 0, k) + 1))
        k = end


def find_format(root: Path) -> tuple[str | None, Path | None, list[str]]:
    """Which export the folder holds, found by content: (format, its index file, every format seen)."""
    seen = []
    for p in sorted(list(root.glob("*.json")) + list(root.glob("*/*.json"))):
        try:
            doc = json.loads(p.read_text())
        except (ValueError, OSError, UnicodeDecodeError):
            continue
        if isinstance(doc, dict) and {"images", "annotations", "categories"} <= set(doc):
            seen.append(("coco", p))
    for p in sorted(list(root.glob("data.yaml")) + list(root.glob("*/data.yaml"))):
        seen.append(("yolo", p))
    for p in sorted(list(root.glob("Annotations")) + list(root.glob("*/Annotations"))):
        if p.is_dir() and any(p.glob("*.xml")):
            seen.append(("voc", p))
    kinds = sorted({k for k, _ in seen})
    if len(kinds) != 1:
        return None, None, kinds
    return seen[0][0], seen[0][1], kinds


def _images_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def read_coco(root: Path, index: Path, problems: list[Problem]) -> list[Photo]:
    text = index.read_text()
    rel = str(index.relative_to(root))
    cats = {}
    for c, line in _json_items(text, "categories"):
        cats[c.get("id")] = str(c.get("name", ""))
    photos, by_id = [], {}
    for im, line in _json_items(text, "images"):
        fname = str(im.get("file_name", ""))
        cands = [index.parent / "images" / fname, index.parent / fname, root / "images" / fname]
        path = next((c for c in cands if c.is_file()), cands[0])
        ph = Photo(str(path.relative_to(root)) if path.is_relative_to(root) else fname, path, file=rel, line=line,
                   width=int(im.get("width") or 0), height=int(im.get("height") or 0))
        photos.append(ph)
        by_id[im.get("id")] = ph
    for a, line in _json_items(text, "annotations"):
        ph = by_id.get(a.get("image_id"))
        if ph is None:
            problems.append(Problem(rel, line, f"annotation {a.get('id')}: image_id {a.get('image_id')} names no image"))
            continue
        label = cats.get(a.get("category_id"))
        if label is None:
            problems.append(Problem(rel, line, f"annotation {a.get('id')}: category_id {a.get('category_id')} "
                                               "names no category"))
            continue
        try:
            x, y, w, h = map(float, a["bbox"])
        except (KeyError, TypeError, ValueError):
            problems.append(Problem(rel, line, f"annotation {a.get('id')}: bbox must be [x, y, width, height]"))
            continue
        ph.boxes.append(Box(label, x, y, x + w, y + h, rel, line))
    return photos


def _yaml_names(text: str) -> list[str] | None:
    """`names` of a YOLO data.yaml (a list in flow or block style, or an index -> name map), without a
    YAML library: the forms Roboflow, CVAT, Label Studio and yolov5 write."""
    m = re.search(r"^names[ \t]*:[ \t]*(.*)$", text, re.M)
    if not m:
        return None
    rest = m.group(1).strip()
    unq = lambda s: s.strip().strip("'\"")  # noqa: E731
    if rest.startswith("["):
        body = rest
        if "]" not in body:
            body = text[m.start(1):text.index("]", m.start(1)) + 1]
        return [unq(s) for s in body.strip("[]").replace("\n", " ").split(",") if s.strip()]
    if rest.startswith("{"):
        return [unq(kv.split(":", 1)[1]) for kv in sorted(rest.strip("{}").split(","), key=lambda kv: int(kv.split(":")[0]))]
    lines = text[m.end():].splitlines()
    items, mapping = [], {}
    for line in lines:
        if not line.strip():
            continue
        if not line.startswith((" ", "\t", "-")):
            break
        s = line.strip()
        if s.startswith("-"):
            items.append(unq(s[1:]))
        elif ":" in s:
            k, v = s.split(":", 1)
            mapping[int(k)] = unq(v)
    return items or [mapping[k] for k in sorted(mapping)]


def _label_path(image: Path) -> Path:
    parts = list(image.parts)
    k = len(parts) - 1 - parts[::-1].index("images")
    parts[k] = "labels"
    return Path(*parts).with_suffix(".txt")


def read_yolo(root: Path, index: Path, problems: list[Problem]) -> list[Photo]:
    from PIL import Image

    rel_yaml = str(index.relative_to(root))
    names = _yaml_names(index.read_text())
    if not names:
        problems.append(Problem(rel_yaml, None, "no class names (names: [...])"))
        names = []
    base = index.parent
    images = [p for p in _images_under(base) if "images" in p.relative_to(base).parts]
    photos = []
    for path in images:
        ph = Photo(str(path.relative_to(root)), path, file=str(path.relative_to(root)))
        lp = _label_path(path)
        if lp.is_file():
            rel = str(lp.relative_to(root))
            ph.file = rel
            try:
                with Image.open(path) as im:
                    ph.width, ph.height = im.size
            except OSError:
                pass
            for n, line in enumerate(lp.read_text(errors="replace").splitlines(), 1):
                if not line.strip():
                    continue
                f = line.split()
                try:
                    c, cx, cy, w, h = int(f[0]), *map(float, f[1:5])
                    if len(f) != 5:
                        raise ValueError
                except (ValueError, IndexError):
                    problems.append(Problem(rel, n, "a label line is `class cx cy w h` (normalised); segments and "
                                                    "extra fields are not boxes"))
                    continue
                if not 0 <= c < len(names):
                    problems.append(Problem(rel, n, f"class {c} is not in {rel_yaml}'s names (0..{len(names) - 1})"))
                    continue
                W, H = ph.width or 1, ph.height or 1
                ph.boxes.append(Box(names[c], (cx - w / 2) * W, (cy - h / 2) * H, (cx + w / 2) * W, (cy + h / 2) * H,
                                    rel, n))
        photos.append(ph)
    return photos


def _voc_objects(path: Path) -> tuple[dict, list[dict]]:
    """(filename and size, objects with name, box and line) of a Pascal VOC file, with expat's line numbers."""
    head, objs, stack, obj, text = {}, [], [], None, []
    p = xml.parsers.expat.ParserCreate()

    def start(tag, _attrs):
        nonlocal obj
        stack.append(tag)
        text.clear()
        if tag == "object":
            obj = {"line": p.CurrentLineNumber}

    def end(tag):
        nonlocal obj
        value = "".join(text).strip()
        stack.pop()
        if tag == "object" and obj is not None:
            objs.append(obj)
            obj = None
        elif obj is not None and tag in ("name", "xmin", "ymin", "xmax", "ymax"):
            obj[tag] = value
        elif obj is None and tag in ("filename", "width", "height"):
            head[tag] = value
        text.clear()

    p.StartElementHandler, p.EndElementHandler = start, end
    p.CharacterDataHandler = text.append
    p.Parse(path.read_bytes(), True)
    return head, objs


def read_voc(root: Path, index: Path, problems: list[Problem]) -> list[Photo]:
    base = index.parent
    jpeg = base / "JPEGImages"
    photos, named = [], set()
    for xml_path in sorted(index.glob("*.xml")):
        rel = str(xml_path.relative_to(root))
        try:
            head, objs = _voc_objects(xml_path)
        except xml.parsers.expat.ExpatError as e:
            problems.append(Problem(rel, e.lineno, f"not valid XML: {e}"))
            continue
        fname = head.get("filename") or xml_path.with_suffix(".jpg").name
        path = jpeg / fname
        named.add(path.resolve())
        ph = Photo(str(path.relative_to(root)), path, file=rel, line=1,
                   width=int(float(head.get("width") or 0)), height=int(float(head.get("height") or 0)))
        for o in objs:
            try:
                x1, y1, x2, y2 = (float(o[k]) for k in ("xmin", "ymin", "xmax", "ymax"))
            except (KeyError, ValueError):
                problems.append(Problem(rel, o["line"], "an <object> needs <name> and <bndbox> xmin, ymin, xmax, ymax"))
                continue
            # VOC counts pixels from 1, both ends inclusive
            ph.boxes.append(Box(o.get("name", ""), x1 - 1, y1 - 1, x2, y2, rel, o["line"]))
        photos.append(ph)
    for path in _images_under(jpeg) if jpeg.is_dir() else []:
        if path.resolve() not in named:  # no annotation file: a product-free view
            photos.append(Photo(str(path.relative_to(root)), path, file=str(path.relative_to(root))))
    return photos


READERS = {"coco": read_coco, "yolo": read_yolo, "voc": read_voc}


# --------------------------------------------------------------------------------------------- reading

def read(root: Path) -> tuple[Upload, list[Problem]]:
    """The upload as one record, and what was wrong reading it (format, brand.toml, annotation files)."""
    problems: list[Problem] = []
    brand = read_brand(root / "brand.toml", problems)
    fmt, index, kinds = find_format(root)
    photos: list[Photo] = []
    if fmt is None:
        problems.append(Problem(str(root), None,
                                "no labelled photos found: give a COCO (annotations.json and images/), YOLO (data.yaml, "
                                "images/, labels/) or Pascal VOC (Annotations/, JPEGImages/) export"
                                if not kinds else f"more than one export in the upload ({', '.join(kinds)}): keep one"))
    else:
        photos = READERS[fmt](root, index, problems)
    refs = {}
    if (root / "reference").is_dir():
        refs = {p.stem: p for p in sorted((root / "reference").glob("*.png"))}
    return Upload(root, fmt or "", brand, photos, refs), problems


def check(root: Path) -> tuple[Upload, list[Problem]]:
    """`read`, then every check of the contract: unreadable or duplicate images, boxes outside their image
    or empty, labels naming no class of brand.toml, classes with too few photos, GTINs (in `read_brand`),
    reference artwork of no class. Reads every image (sizes, SHA-256)."""
    from PIL import Image

    up, problems = read(root)
    first_at: dict[str, Photo] = {}
    for ph in up.photos:
        at = (ph.file, ph.line)
        if not ph.path.is_file():
            problems.append(Problem(*at, f"image {ph.name} is missing"))
            ph.sha256 = ""
            continue
        data = ph.path.read_bytes()
        ph.sha256 = hashlib.sha256(data).hexdigest()
        try:
            with Image.open(ph.path) as im:
                im.load()
                size = im.size
        except Exception as e:  # noqa: BLE001 - PIL raises many kinds for a broken file
            problems.append(Problem(*at, f"image {ph.name} cannot be read ({type(e).__name__}: {e})"))
            ph.sha256 = ""
            continue
        if ph.width and ph.height and (ph.width, ph.height) != size and up.format != "yolo":
            problems.append(Problem(*at, f"image {ph.name} is {size[0]}x{size[1]}, the annotations say "
                                         f"{ph.width}x{ph.height}"))
        if up.format == "yolo" and (ph.width, ph.height) != size and ph.boxes:  # normalised: re-scale
            sx, sy = size[0] / (ph.width or 1), size[1] / (ph.height or 1)
            for b in ph.boxes:
                b.x1, b.x2, b.y1, b.y2 = b.x1 * sx, b.x2 * sx, b.y1 * sy, b.y2 * sy
        ph.width, ph.height = size
        if ph.sha256 in first_at:
            o = first_at[ph.sha256]
            problems.append(Problem(*at, f"image {ph.name} is the same file as {o.name} ({o.file}"
                                         + (f":{o.line}" if o.line else "") + "): a photo may be in one split only"))
        else:
            first_at[ph.sha256] = ph
        for b in ph.boxes:
            where = (b.file or ph.file, b.line)
            if b.x2 - b.x1 < MIN_BOX_PX or b.y2 - b.y1 < MIN_BOX_PX:
                problems.append(Problem(*where, f"{ph.name}: box of {b.label!r} is empty "
                                                f"({b.x2 - b.x1:.1f}x{b.y2 - b.y1:.1f} px)"))
            elif (b.x1 < -EDGE_SLACK_PX or b.y1 < -EDGE_SLACK_PX or b.x2 > size[0] + EDGE_SLACK_PX
                  or b.y2 > size[1] + EDGE_SLACK_PX):
                problems.append(Problem(*where, f"{ph.name}: box of {b.label!r} [{b.x1:.0f}, {b.y1:.0f}, {b.x2:.0f}, "
                                                f"{b.y2:.0f}] lies outside the {size[0]}x{size[1]} image"))
            else:
                b.x1, b.y1 = max(0.0, b.x1), max(0.0, b.y1)
                b.x2, b.y2 = min(float(size[0]), b.x2), min(float(size[1]), b.y2)
    if up.brand is not None:
        known = up.brand.label_classes()
        unknown: dict[str, list[Box]] = {}
        for ph in up.photos:
            for b in ph.boxes:
                if b.label not in known:
                    unknown.setdefault(b.label, []).append(b)
        for label, boxes in unknown.items():
            b = boxes[0]
            problems.append(Problem(b.file, b.line, f"label {label!r} names no class of brand.toml "
                                                    f"({', '.join(sorted(known))}); {len(boxes)} box(es)"
                                                    + ("" if len(boxes) == 1 else ", the first here")))
        counts = class_photo_counts(up)
        for p in up.brand.products:
            g, c = counts.get(p.key, 0), counts.get(f"{p.key}-counterfeit", 0)
            if g < MIN_PHOTOS:
                problems.append(Problem("brand.toml", p.line, f"product {p.key}: {g} photos of the genuine pack; at "
                                                            f"least {MIN_PHOTOS} are needed ({WARN_PHOTOS} or more advised)"))
            elif g < WARN_PHOTOS:
                problems.append(Problem("brand.toml", p.line, f"product {p.key}: only {g} photos of the genuine pack; "
                                                            f"{WARN_PHOTOS} or more advised", error=False))
            if 0 < c < MIN_PHOTOS:
                problems.append(Problem("brand.toml", p.line, f"product {p.key}: {c} photos of its counterfeit; at least "
                                                            f"{MIN_PHOTOS} are needed, or none (genuine only)"))
            elif MIN_PHOTOS <= c < WARN_PHOTOS:
                problems.append(Problem("brand.toml", p.line, f"product {p.key}: only {c} photos of its counterfeit; "
                                                            f"{WARN_PHOTOS} or more advised", error=False))
            elif c == 0:
                problems.append(Problem("brand.toml", p.line, f"product {p.key}: no counterfeit photos: its packs will be "
                                                            "GENUINE or 'scan again', never COUNTERFEIT by sight (barcodes "
                                                            "still catch a foreign or copied code)", error=False))
        for name in up.references:
            if name not in set(known.values()):
                problems.append(Problem(f"reference/{name}.png", None, f"{name!r} is no class of brand.toml"))
    if up.photos and not any(not ph.boxes for ph in up.photos):
        problems.append(Problem(str(root.name), None, "no product-free photos (images without boxes): a few views "
                                                      "of the counters and belts without a pack help", error=False))
    return up, problems


def class_photo_counts(up: Upload) -> dict[str, int]:
    """Class -> how many photos show at least one pack of it."""
    out: dict[str, int] = {}
    for ph in up.photos:
        for cls in {up.class_of(b) for b in ph.boxes} - {None}:
            out[cls] = out.get(cls, 0) + 1
    return out


def errors(problems: list[Problem]) -> list[Problem]:
    return [p for p in problems if p.error]


# --------------------------------------------------------------------------------------------- writing

def write(up: Upload, out: Path, fmt: str) -> Path:
    """The upload's photos and boxes in another format (brand.toml and reference/ copied along). Images
    are copied under their file names; boxes keep their labels."""
    out.mkdir(parents=True, exist_ok=True)
    if (up.root / "brand.toml").is_file():
        shutil.copy(up.root / "brand.toml", out / "brand.toml")
    if up.references:
        (out / "reference").mkdir(exist_ok=True)
        for name, p in up.references.items():
            shutil.copy(p, out / "reference" / f"{name}.png")
    labels = sorted({b.label for ph in up.photos for b in ph.boxes})
    names = [Path(ph.name).name for ph in up.photos]
    if len(set(names)) != len(names):
        raise ValueError("two photos share a file name: cannot flatten them into one folder")
    if fmt == "coco":
        (out / "images").mkdir(exist_ok=True)
        images, anns = [], []
        for k, ph in enumerate(up.photos, 1):
            shutil.copy(ph.path, out / "images" / Path(ph.name).name)
            images.append({"id": k, "file_name": Path(ph.name).name, "width": ph.width, "height": ph.height})
            for b in ph.boxes:
                anns.append({"id": len(anns) + 1, "image_id": k, "category_id": labels.index(b.label) + 1,
                             "bbox": [round(b.x1, 2), round(b.y1, 2), round(b.x2 - b.x1, 2), round(b.y2 - b.y1, 2)],
                             "area": round((b.x2 - b.x1) * (b.y2 - b.y1), 2), "iscrowd": 0})
        cats = [{"id": i + 1, "name": n} for i, n in enumerate(labels)]
        body = ",\n".join(f' "{k}": [\n' + ",\n".join("  " + json.dumps(x) for x in v) + "\n ]"
                          for k, v in (("images", images), ("annotations", anns), ("categories", cats)))
        (out / "annotations.json").write_text("{\n" + body + "\n}\n")
    elif fmt == "yolo":
        for sub in ("images", "labels"):
            (out / sub).mkdir(exist_ok=True)
        for ph in up.photos:
            name = Path(ph.name).name
            shutil.copy(ph.path, out / "images" / name)
            if ph.boxes:
                (out / "labels" / f"{Path(name).stem}.txt").write_text("".join(
                    f"{labels.index(b.label)} {(b.x1 + b.x2) / 2 / ph.width:.6f} {(b.y1 + b.y2) / 2 / ph.height:.6f} "
                    f"{(b.x2 - b.x1) / ph.width:.6f} {(b.y2 - b.y1) / ph.height:.6f}\n" for b in ph.boxes))
        (out / "data.yaml").write_text(f"train: images\nval: images\nnc: {len(labels)}\nnames: {json.dumps(labels)}\n")
    elif fmt == "voc":
        for sub in ("Annotations", "JPEGImages"):
            (out / sub).mkdir(exist_ok=True)
        for ph in up.photos:
            name = Path(ph.name).name
            shutil.copy(ph.path, out / "JPEGImages" / name)
            if not ph.boxes:
                continue  # no annotation file: a product-free view
            objs = "".join(
                f"  <object>\n    <name>{b.label}</name>\n    <bndbox>\n      <xmin>{b.x1 + 1:.1f}</xmin>\n"
                f"      <ymin>{b.y1 + 1:.1f}</ymin>\n      <xmax>{b.x2:.1f}</xmax>\n      <ymax>{b.y2:.1f}</ymax>\n"
                f"    </bndbox>\n  </object>\n" for b in ph.boxes)
            (out / "Annotations" / f"{Path(name).stem}.xml").write_text(
                f"<annotation>\n  <filename>{name}</filename>\n  <size>\n    <width>{ph.width}</width>\n"
                f"    <height>{ph.height}</height>\n    <depth>3</depth>\n  </size>\n{objs}</annotation>\n")
    else:
        raise ValueError(f"format {fmt!r}: one of {', '.join(FORMATS)}")
    return out


def report_problems(problems: list[Problem]) -> str:
    errs = errors(problems)
    lines = [str(p) for p in sorted(problems, key=lambda p: (not p.error, p.file, p.line or 0))]
    head = (f"upload refused: {len(errs)} problem(s), {len(problems) - len(errs)} warning(s); nothing was trained"
            if errs else f"upload accepted ({len(problems)} warning(s))")
    return "\n".join([head] + ["  " + s for s in lines])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Check a brand's upload, or convert it to another format.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check")
    c.add_argument("upload", type=Path)
    v = sub.add_parser("convert")
    v.add_argument("upload", type=Path)
    v.add_argument("out", type=Path)
    v.add_argument("--format", choices=FORMATS, required=True)
    args = ap.parse_args(argv)
    up, problems = check(args.upload)
    if args.cmd == "check":
        print(report_problems(problems))
        raise SystemExit(1 if errors(problems) else 0)
    if errors(problems):
        raise SystemExit(report_problems(problems))
    write(up, args.out, args.format)
    print(f"{args.out}: {len(up.photos)} photos as {args.format} (from {up.format})")


if __name__ == "__main__":
    main()
