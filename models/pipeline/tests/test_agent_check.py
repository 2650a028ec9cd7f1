"""The agent's own `hallmark models verify` on bundles the pipeline writes (`agent_check`). Needs the built
agent (CI builds it with `cargo test` before these run)."""
import json

import pytest

from hallmark_models import agent_check, brands, bundle

TH = {"confidence": 0.25, "iou": 0.45, "genuine": 0.8, "counterfeit": 0.9, "margin": 0.15}


@pytest.fixture
def signed(tmp_path):
    bundle.keygen(tmp_path / "k.pem", tmp_path / "k.pub.pem")
    model = tmp_path / "m.onnx"
    model.write_bytes(b"model bytes")
    out = tmp_path / "aurora"
    bundle.write(out, brands.AURORA, model, 320, TH, {}, bundle.load_private(tmp_path / "k.pem"), revision=3)
    return out, bundle.load_private(tmp_path / "k.pem")


def test_the_agent_accepts_what_the_pipeline_signed(signed):
    out, key = signed
    line = agent_check.verify(out, key)
    assert line.startswith(f"ok {out} brand=aurora revision=3"), line


def test_the_agent_refuses_a_tampered_model_or_another_signer(signed, tmp_path):
    out, key = signed
    (out / "model.onnx").write_bytes(b"other bytes")
    with pytest.raises(agent_check.AgentCheckError, match="digest mismatch"):
        agent_check.verify(out, key)
    bundle.keygen(tmp_path / "k2.pem", tmp_path / "k2.pub.pem")
    with pytest.raises(agent_check.AgentCheckError, match="refuses"):
        agent_check.verify(out, bundle.load_private(tmp_path / "k2.pem"))


def test_a_manifest_only_the_agent_rejects_is_caught(signed):
    # A class list out of id order: the agent refuses it even though the signature is good.
    out, key = signed
    doc = json.loads((out / "manifest.json").read_text())
    doc["classes"][0]["id"] = 5
    body = (json.dumps(doc, indent=2) + "\n").encode()
    (out / "manifest.json").write_bytes(body)
    import base64
    (out / "manifest.sig").write_text(base64.b64encode(key.sign(body)).decode() + "\n")
    with pytest.raises(agent_check.AgentCheckError, match="classes"):
        agent_check.verify(out, key)
