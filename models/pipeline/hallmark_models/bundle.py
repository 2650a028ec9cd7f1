"""Signed model bundles (`hallmark.model/1`, see models/BUNDLE.md): key generation, manifest assembly,
Ed25519 signing and verification. The manifest's `files` names every file of the bundle with its SHA-256, so
the signature covers all of them; `sign` writes that list and `verify` refuses a file not named, a named one
missing or another digest. Needs only `cryptography` (no torch), so CI can check bundles.

    python -m hallmark_models.bundle keygen --private models/keys/demo-publisher.key.pem \
        --public models/keys/demo-publisher.pub.pem
    python -m hallmark_models.bundle verify models/northwind --public models/keys/demo-publisher.pub.pem
    python -m hallmark_models.bundle relist models/northwind --old-public OLD.pub.pem --key KEY.pem
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import re
import shutil
from datetime import datetime, timezone
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .brands import BRANDS, Brand

SCHEMA = "hallmark.model/1"


class BundleError(Exception):
    """A bundle that must not be trusted, with the reason."""


def keygen(private: Path, public: Path) -> None:
    key = Ed25519PrivateKey.generate()
    private.parent.mkdir(parents=True, exist_ok=True)
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    private.chmod(0o600)
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo))


def load_private(path: Path) -> Ed25519PrivateKey:
    """A PKCS#8 PEM private key: what `keygen` here, `hallmark keygen` and `openssl genpkey -algorithm ed25519`
    write (v1, the seed alone), or the v2 form (public key attached) older `hallmark keygen`s wrote, which
    `cryptography` itself refuses ("extra data")."""
    data = path.read_bytes()
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except ValueError as e:
        key = _ed25519_pkcs8_v2(data)
        if key is None:
            raise BundleError(f"{path}: not a PKCS#8 PEM private key ({e})") from e
    if not isinstance(key, Ed25519PrivateKey):
        raise BundleError(f"{path}: not an Ed25519 private key")
    return key


# PKCS#8 v2 (RFC 5958) of an Ed25519 key, as ed25519-dalek encodes it: version 1, the algorithm, the seed,
# then [1] the public key as a bit string.
_V2_HEAD = bytes.fromhex("3051020101300506032b657004220420")
_V2_PUBLIC = bytes.fromhex("812100")


def _ed25519_pkcs8_v2(pem: bytes) -> Ed25519PrivateKey | None:
    """The key of a PKCS#8 v2 Ed25519 PEM whose attached public key is the seed's own; None if it is not one."""
    lines = pem.decode("ascii", "replace").strip().splitlines()
    if len(lines) < 3 or lines[0] != "-----BEGIN PRIVATE KEY-----" or lines[-1] != "-----END PRIVATE KEY-----":
        return None
    try:
        der = base64.b64decode("".join(lines[1:-1]), validate=True)
    except ValueError:
        return None
    if len(der) != 83 or not der.startswith(_V2_HEAD) or der[48:51] != _V2_PUBLIC:
        return None
    key = Ed25519PrivateKey.from_private_bytes(der[16:48])
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return key if raw == der[51:] else None


def load_public(path: Path) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(path.read_bytes())
    if not isinstance(key, Ed25519PublicKey):
        raise BundleError(f"{path}: not an Ed25519 public key")
    return key


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def input_size_ok(n: object) -> bool:
    """An input side a YOLOv5 graph takes: a positive multiple of its largest stride, 32."""
    return isinstance(n, int) and not isinstance(n, bool) and n > 0 and n % 32 == 0


def check_thresholds(t: dict, where: str = "manifest") -> None:
    """Refuses thresholds the agent would refuse: `counterfeit` must lie strictly above `confidence`
    (at or below it, the counterfeit threshold decides nothing: every detection that survives the score
    filter would already pass it), `margin` (optional) in [0, 1)."""
    try:
        conf, cf = float(t["confidence"]), float(t["counterfeit"])
        float(t["genuine"]), float(t["iou"])
    except (KeyError, TypeError, ValueError) as e:
        raise BundleError(f"{where}: thresholds need numeric confidence, iou, genuine and counterfeit") from e
    if not cf > conf:
        raise BundleError(f"{where}: thresholds.counterfeit ({cf}) must be above thresholds.confidence ({conf})")
    if "margin" in t and not 0.0 <= float(t["margin"]) < 1.0:
        raise BundleError(f"{where}: thresholds.margin ({t['margin']}) must lie in [0, 1)")


def check_prefixes(prefixes, where: str = "manifest") -> None:
    """Refuses what the agent refuses: no GS1 company prefix (every barcoded pack would be called
    counterfeit) or one that is not 4 to 12 digits."""
    if not isinstance(prefixes, list) or not prefixes:
        raise BundleError(f"{where}: gs1_prefixes is empty: every barcoded pack would be called counterfeit")
    for p in prefixes:
        if not (isinstance(p, str) and p.isdigit() and 4 <= len(p) <= 12):
            raise BundleError(f"{where}: gs1_prefixes: {p!r} is not a GS1 company prefix (4 to 12 digits)")


PRECISIONS = ("fp32", "fp16", "int8")
INPUT_DTYPES = ("float32", "uint8")
_VARIANT_NAME = re.compile(r"[a-z0-9-]+")
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")


def check_variants(doc: dict, where: str = "manifest") -> None:
    """Refuses a `variants` list (other encodings of the same detector, see models/BUNDLE.md) the agent
    could not use safely: each needs a unique [a-z0-9-] `name`, a plain `file` in the bundle folder that
    no other entry (nor `model.file`) names, its `sha256`, a `precision` (fp32 | fp16 | int8), an `input`
    (`name`, `dtype` float32 | uint8, `width` and `height` positive multiples of 32) and its own
    `thresholds` (checked as the top-level ones). Absent `variants` is fine."""
    variants = doc.get("variants")
    if variants is None:
        return
    if not isinstance(variants, list):
        raise BundleError(f"{where}: variants must be a list")
    names, files = set(), {str(doc.get("model", {}).get("file", "model.onnx"))}
    for i, v in enumerate(variants):
        if not isinstance(v, dict):
            raise BundleError(f"{where}: variants[{i}] is not an object")
        name = v.get("name")
        if not (isinstance(name, str) and _VARIANT_NAME.fullmatch(name)):
            raise BundleError(f"{where}: variants[{i}].name {name!r} must be non-empty, [a-z0-9-] only")
        at = f"{where}: variant {name}"
        if name in names:
            raise BundleError(f"{at}: name used twice")
        names.add(name)
        f = v.get("file")
        if not (isinstance(f, str) and f and "/" not in f and "\\" not in f and not f.startswith(".")):
            raise BundleError(f"{at}: file {f!r} must be a plain file name in the bundle folder (no path, not hidden)")
        if f in ("manifest.json", "manifest.sig"):
            raise BundleError(f"{at}: file {f!r} is the manifest's own")
        if f in files:
            raise BundleError(f"{at}: file {f!r} is already named by the model or another variant")
        files.add(f)
        if not (isinstance(v.get("sha256"), str) and _SHA256.fullmatch(v["sha256"])):
            raise BundleError(f"{at}: sha256 must be 64 hex digits")
        if v.get("precision") not in PRECISIONS:
            raise BundleError(f"{at}: precision {v.get('precision')!r} must be one of {'|'.join(PRECISIONS)}")
        inp = v.get("input")
        if not isinstance(inp, dict) or not (isinstance(inp.get("name"), str) and inp["name"]):
            raise BundleError(f"{at}: input needs the graph's input name")
        if inp.get("dtype") not in INPUT_DTYPES:
            raise BundleError(f"{at}: input.dtype {inp.get('dtype')!r} must be one of {'|'.join(INPUT_DTYPES)}")
        for side in ("width", "height"):
            n = inp.get(side)
            if not input_size_ok(n):
                raise BundleError(f"{at}: input.{side} {n!r} must be a positive multiple of 32")
        if not isinstance(v.get("thresholds"), dict):
            raise BundleError(f"{at}: thresholds are required")
        check_thresholds(v["thresholds"], at)
        if "metrics" in v and not isinstance(v["metrics"], dict):
            raise BundleError(f"{at}: metrics must be an object")
    check_default_variants(doc, where)


MODES = ("kiosk", "conveyor")


def check_default_variants(doc: dict, where: str = "manifest") -> None:
    """Refuses what the agent refuses in `default_variants` (the variant each mode runs when a device's
    configuration names none): a mode other than kiosk or conveyor, or a variant the bundle does not have."""
    defaults = doc.get("default_variants")
    if defaults is None:
        return
    if not isinstance(defaults, dict):
        raise BundleError(f"{where}: default_variants must be an object")
    names = {v.get("name") for v in doc.get("variants") or []}
    for mode, name in defaults.items():
        if mode not in MODES:
            raise BundleError(f"{where}: default_variants: {mode!r} is not a mode ({', '.join(MODES)})")
        if name not in names:
            raise BundleError(f"{where}: default_variants: {mode}: no variant named {name!r}")


def set_defaults(bundle: Path, defaults: dict, public: Ed25519PublicKey, key: Ed25519PrivateKey) -> dict:
    """A new revision of a verified bundle whose `default_variants` is `defaults` (mode -> variant name;
    an empty name drops the mode), signed with `key`."""
    doc = verify(bundle, public)
    merged = {**doc.get("default_variants", {}), **defaults}
    merged = {m: n for m, n in merged.items() if n}
    if merged:
        doc["default_variants"] = merged
    else:
        doc.pop("default_variants", None)
    doc["revision"] = int(doc["revision"]) + 1
    return sign(bundle, doc, key)


def check_variant_files(bundle: Path, doc: dict) -> None:
    """Each variant's file is there and matches its SHA-256 (the signature covers it through that digest)."""
    for v in doc.get("variants") or []:
        path = bundle / v["file"]
        if not path.is_file():
            raise BundleError(f"{bundle}: variant {v['name']}: file {v['file']} missing")
        if sha256_file(path) != v["sha256"].lower():
            raise BundleError(f"{bundle}: variant {v['name']}: {v['file']} does not match the manifest's sha256")


# The two files the list cannot name: the manifest itself and its signature.
SIGNATURE_FILES = ("manifest.json", "manifest.sig")
# A listed path: a plain name at the bundle's root or one folder below ("selftest/a.jpg"), no part hidden.
_PART = r"[^/\\.\x00-\x1f][^/\\\x00-\x1f]*"
_FILE_PATH = re.compile(rf"{_PART}(/{_PART})?")


def _walk(folder: Path) -> list[tuple[str, Path]]:
    """Every file of a bundle folder but manifest.json and manifest.sig, as ("reference/a.png", path), sorted.
    Refuses what no bundle may hold, naming it: links, special files, hidden names, anything deeper than
    one folder level (the agent's archive rules)."""
    out: list[tuple[str, Path]] = []

    def entries(d: Path, prefix: str) -> None:
        for p in sorted(d.iterdir(), key=lambda p: p.name):
            rel = prefix + p.name
            if not prefix and p.name in SIGNATURE_FILES:
                continue
            if p.is_symlink():
                raise BundleError(f"{folder}: {rel} is a symbolic link; a bundle holds plain files only")
            if not _FILE_PATH.fullmatch(rel.split("/")[-1]):
                raise BundleError(f"{folder}: {rel}: a bundle's file names are plain and not hidden")
            if p.is_dir():
                if prefix:
                    raise BundleError(f"{folder}: {rel}: a bundle holds files at its root and one folder "
                                      "level below, nothing deeper")
                entries(p, rel + "/")
            elif p.is_file():
                out.append((rel, p))
            else:
                raise BundleError(f"{folder}: {rel} is not a regular file")

    entries(folder, "")
    return out


def bundle_files(folder: Path) -> dict[str, str]:
    """The manifest's `files`: every file of the folder but manifest.json and manifest.sig, by its path
    ("selftest/expected.json"), with its SHA-256; sorted. The signature covers each through its digest."""
    return {rel: sha256_file(p) for rel, p in _walk(folder)}


def _some(names: list[str], n: int = 10) -> str:
    return ", ".join(names[:n]) + (f" and {len(names) - n} more" if len(names) > n else "")


def check_files(bundle: Path, doc: dict, where: str) -> None:
    """The manifest's `files` names every file of the bundle with its SHA-256 (models, variants, self-test,
    reference artwork, report, pictures): a file not named, a named one missing, or another digest refuses
    the bundle, naming the files. The model's and each variant's entry agree with their own `sha256`."""
    listed = doc.get("files")
    if not isinstance(listed, dict) or not listed:
        raise BundleError(f"{where}: the manifest has no `files` list, so the signature does not cover every "
                          "file of the bundle (a bundle signed before file lists: re-release it with "
                          "`python -m hallmark_models.bundle relist`)")
    for name, digest in listed.items():
        if not _FILE_PATH.fullmatch(name) or name in SIGNATURE_FILES:
            raise BundleError(f"{where}: files: {name!r} is not a file a bundle may name")
        if not (isinstance(digest, str) and _SHA256.fullmatch(digest)):
            raise BundleError(f"{where}: files: {name}: sha256 must be 64 hex digits")
    for entry in [doc["model"]] + list(doc.get("variants") or []):
        if str(listed.get(entry["file"], "")).lower() != str(entry["sha256"]).lower():
            raise BundleError(f"{where}: files: {entry['file']} is not listed with the digest the manifest "
                              "gives it elsewhere")
    present = dict(_walk(bundle))
    unlisted = sorted(set(present) - set(listed))
    if unlisted:
        raise BundleError(f"{where}: not named in the signed manifest's files (refused): {_some(unlisted)}")
    missing = sorted(set(listed) - set(present))
    if missing:
        raise BundleError(f"{where}: named in the signed manifest's files but missing: {_some(missing)}")
    for name in sorted(listed):
        if sha256_file(present[name]) != listed[name].lower():
            raise BundleError(f"{where}: {name} does not match the manifest's sha256")


def manifest(brand: Brand, model: Path, imgsz: int, revision: int, thresholds: dict, metrics: dict) -> dict:
    return {
        "schema": SCHEMA,
        "brand": brand.key,
        "revision": revision,
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "model": {
            "file": "model.onnx",
            "sha256": sha256_file(model),
            "format": "yolov5",
            "input": {"name": "images", "width": imgsz, "height": imgsz},
            "output": {"name": "output0"},
        },
        "classes": brand.classes(),
        "gs1_prefixes": [brand.gs1_prefix],
        "thresholds": thresholds,
        "metrics": metrics,
    }


def next_revision(out: Path, model: Path) -> int:
    """Revisions grow with each release; re-bundling the same model keeps its revision."""
    old = out / "manifest.json"
    if not old.exists():
        return 1
    prev = json.loads(old.read_text())
    same = prev.get("model", {}).get("sha256") == sha256_file(model)
    return int(prev.get("revision", 0)) + (0 if same else 1)


def write(out: Path, brand: Brand, model: Path, imgsz: int, thresholds: dict, metrics: dict,
          key: Ed25519PrivateKey, revision: int | None = None, variants: list | None = None) -> dict:
    """`variants` (entries as in models/BUNDLE.md) must name files already in `out`."""
    check_thresholds(thresholds)
    out.mkdir(parents=True, exist_ok=True)
    rev = revision if revision is not None else next_revision(out, model)
    if model.resolve() != (out / "model.onnx").resolve():
        shutil.copy(model, out / "model.onnx")
    doc = manifest(brand, out / "model.onnx", imgsz, rev, thresholds, metrics)
    if variants:
        doc["variants"] = variants
    return sign(out, doc, key)


def sign(out: Path, doc: dict, key: Ed25519PrivateKey) -> dict:
    """Checks a whole manifest (thresholds, prefixes, variants and their files in `out`), lists every file
    `out` holds in its `files` (with their SHA-256), and writes it with its signature; for a re-release that
    keeps the model (adding a variant, say). Write everything the bundle ships (report, pictures, self-test)
    before signing: a file added later is refused by every reader."""
    check_thresholds(doc["thresholds"])
    check_prefixes(doc["gs1_prefixes"])
    check_variants(doc)
    check_variant_files(out, doc)
    doc = dict(doc, files=bundle_files(out))
    body = (json.dumps(doc, indent=2) + "\n").encode()
    (out / "manifest.json").write_bytes(body)
    _write_signature(out, body, key)
    return doc


def _write_signature(out: Path, body: bytes, key: Ed25519PrivateKey) -> None:
    (out / "manifest.sig").write_text(base64.b64encode(key.sign(body)).decode() + "\n")


def verify(bundle: Path, public: Ed25519PublicKey, require_files: bool = True) -> dict:
    """Checks signature, schema, model and variant digests, and that the manifest's `files` names every file
    of the bundle with its digest; returns the manifest or raises BundleError. `require_files=False` (for
    `relist` only) leaves out the files check: a bundle signed before file lists, or one whose files are
    being replaced."""
    try:
        body = (bundle / "manifest.json").read_bytes()
    except FileNotFoundError as e:
        raise BundleError(f"{bundle}: no manifest.json") from e
    sig_path = bundle / "manifest.sig"
    if not sig_path.exists():
        raise BundleError(f"{bundle}: unsigned (no manifest.sig)")
    try:
        public.verify(base64.b64decode(sig_path.read_text().strip(), validate=True), body)
    except (InvalidSignature, ValueError) as e:
        raise BundleError(f"{bundle}: manifest signature does not verify with the trusted key") from e
    doc = json.loads(body)
    if doc.get("schema") != SCHEMA:
        raise BundleError(f"{bundle}: schema {doc.get('schema')!r}, expected {SCHEMA!r}")
    for field in ("brand", "revision", "created", "model", "classes", "gs1_prefixes", "thresholds", "metrics"):
        if field not in doc:
            raise BundleError(f"{bundle}: manifest lacks {field!r}")
    check_thresholds(doc["thresholds"], str(bundle))
    check_prefixes(doc["gs1_prefixes"], str(bundle))
    check_variants(doc, str(bundle))
    model = bundle / doc["model"]["file"]
    if not model.exists():
        raise BundleError(f"{bundle}: model file {doc['model']['file']} missing")
    if sha256_file(model) != doc["model"]["sha256"]:
        raise BundleError(f"{bundle}: model.onnx does not match the manifest's sha256")
    check_variant_files(bundle, doc)
    if require_files:
        check_files(bundle, doc, str(bundle))
    return doc


def resign(bundle: Path, old_public: Ed25519PublicKey, key: Ed25519PrivateKey) -> dict:
    """Key rotation: a bundle the old key vouches for, signed again with the new key, its manifest byte for
    byte unchanged (same revision: the content is the same, only the signer changed). Nothing is written
    unless the bundle verifies with the old key."""
    verify(bundle, old_public)
    _write_signature(bundle, (bundle / "manifest.json").read_bytes(), key)
    return verify(bundle, key.public_key())


def relist(bundle: Path, old_public: Ed25519PublicKey, key: Ed25519PrivateKey) -> dict:
    """A new release of the same bundle whose `files` names what the folder holds now, with `revision` + 1
    (the manifest changes, and agents take only a higher revision), signed with `key`. The bundle must
    verify with `old_public` first (signature, manifest, model and variant digests; its `files`, if any, is
    replaced): for a bundle signed before file lists, or one whose self-test or reference files changed.
    It vouches for every file in the folder: check the folder holds only what you mean to ship."""
    doc = verify(bundle, old_public, require_files=False)
    doc = dict(doc, revision=int(doc["revision"]) + 1,
               created=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
    doc.pop("files", None)
    sign(bundle, doc, key)
    return verify(bundle, key.public_key())


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Hallmark bundle tooling.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    k = sub.add_parser("keygen")
    k.add_argument("--private", type=Path, required=True)
    k.add_argument("--public", type=Path, required=True)
    v = sub.add_parser("verify")
    v.add_argument("bundle", type=Path)
    v.add_argument("--public", type=Path, required=True)
    r = sub.add_parser("resign", help="key rotation: re-sign a bundle that verifies with --old-public")
    r.add_argument("bundle", type=Path)
    r.add_argument("--old-public", type=Path, required=True)
    r.add_argument("--key", type=Path, required=True, help="the new private key")
    rl = sub.add_parser("relist", help="a new revision listing every file the folder holds now (a bundle signed "
                                       "before file lists, or with changed self-test files), signed with --key")
    rl.add_argument("bundle", type=Path)
    rl.add_argument("--old-public", type=Path, required=True, help="the key the bundle verifies with now")
    rl.add_argument("--key", type=Path, required=True, help="the private key to sign with (the same or a new one)")
    d = sub.add_parser("defaults", help="a new revision naming the variant each mode runs by default")
    d.add_argument("bundle", type=Path)
    d.add_argument("--public", type=Path, required=True, help="the key the bundle verifies with now")
    d.add_argument("--key", type=Path, required=True, help="the private key to sign with")
    for mode in MODES:
        d.add_argument(f"--{mode}", metavar="VARIANT", help=f"the variant {mode} mode runs ('' for the main model)")
    args = ap.parse_args(argv)
    if args.cmd == "defaults":
        wanted = {m: getattr(args, m) for m in MODES if getattr(args, m) is not None}
        doc = set_defaults(args.bundle, wanted, load_public(args.public), load_private(args.key))
        print(f"{doc['brand']} revision {doc['revision']}: default variants {doc.get('default_variants', {})}")
    elif args.cmd == "relist":
        doc = relist(args.bundle, load_public(args.old_public), load_private(args.key))
        print(f"re-listed {doc['brand']} as revision {doc['revision']} ({len(doc['files'])} files), signed with {args.key}")
    elif args.cmd == "resign":
        doc = resign(args.bundle, load_public(args.old_public), load_private(args.key))
        print(f"re-signed {doc['brand']} revision {doc['revision']} with {args.key}")
    elif args.cmd == "keygen":
        keygen(args.private, args.public)
        print(f"wrote {args.private} (keep it secret) and {args.public}")
    else:
        doc = verify(args.bundle, load_public(args.public))
        names = [v["name"] for v in doc.get("variants") or []]
        print(f"ok: {doc['brand']} revision {doc['revision']}" + (f", variants {', '.join(names)}" if names else ""))


if __name__ == "__main__":
    main()
