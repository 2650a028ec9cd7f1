"""The agent's own `hallmark models verify` on bundles the pipeline writes (`agent_check`). Needs the built
agent (CI builds it with `cargo test` before these run)."""
import json

import pytest

from conftest import signed_bundle
from hallmark_models import agent_check, bundle


@pytest.fixture
def signed(tmp_path):
    return signed_bundle(tmp_path, "aurora", b"model bytes", revision=3)


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
