import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TH = {"confidence": 0.25, "iou": 0.45, "genuine": 0.8, "counterfeit": 0.9, "margin": 0.15}


def signed_bundle(tmp_path: Path, name: str, payload: bytes, revision: int, thresholds: dict = TH,
                  metrics: dict | None = None, files: dict | None = None):
    """An Aurora bundle in tmp_path/name holding `payload` as its model and `files` (name -> bytes, e.g. the
    report), signed by a fresh key (tmp_path/k.pem, public half k.pub.pem); returns (folder, private key)."""
    from hallmark_models import brands, bundle

    if not (tmp_path / "k.pem").exists():
        bundle.keygen(tmp_path / "k.pem", tmp_path / "k.pub.pem")
    model = tmp_path / f"{name}.model"
    model.write_bytes(payload)
    out = tmp_path / name
    out.mkdir(parents=True, exist_ok=True)
    for f, data in (files or {}).items():
        (out / f).write_bytes(data)
    key = bundle.load_private(tmp_path / "k.pem")
    bundle.write(out, brands.AURORA, model, 320, thresholds, metrics or {}, key, revision=revision)
    return out, key
