"""The agent's own check of a bundle before it is published: `hallmark models verify`, trusting the public
half of the key that signed it. The pipeline verifies with its own code too, but the agent is what devices
run, so a bundle the agent would refuse (a field it reads differently, a variant it cannot open) must never
leave the pipeline.

The binary is `$HALLMARK_BIN`, else the workspace's `target/release/hallmark`, then `target/debug/hallmark`,
then `hallmark` on PATH."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

REPO = Path(__file__).resolve().parents[3]


class AgentCheckError(RuntimeError):
    pass


def agent_binary() -> Path:
    env = os.environ.get("HALLMARK_BIN")
    if env:
        return Path(env)
    for build in ("release", "debug"):
        p = REPO / "target" / build / "hallmark"
        if p.is_file() and os.access(p, os.X_OK):
            return p
    found = shutil.which("hallmark")
    if found:
        return Path(found)
    raise AgentCheckError("no hallmark binary to verify the bundle with: build the agent "
                          "(cargo build --release -p hallmark-agent) or set HALLMARK_BIN")


def verify(bundle_dir: Path, key: Ed25519PrivateKey, binary: Path | None = None) -> str:
    """Runs `hallmark models verify bundle_dir` trusting only `key`'s public half; returns its report line,
    raises AgentCheckError with the agent's message when it refuses the bundle."""
    binary = binary or agent_binary()
    pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    with tempfile.TemporaryDirectory() as tmp:
        pub = Path(tmp) / "publisher.pub.pem"
        pub.write_bytes(pem)
        env = {k: v for k, v in os.environ.items() if not k.startswith("HALLMARK_")}
        env["HALLMARK_TRUST_PUBLIC_KEYS"] = str(pub)
        out = subprocess.run([str(binary), "models", "verify", str(bundle_dir)], env=env,
                             capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise AgentCheckError(f"the agent refuses {bundle_dir}: {out.stderr.strip() or out.stdout.strip()}")
    return out.stdout.strip()
