"""The pipeline's layering (.importlinter): data and records at the bottom, evaluation and reports in the
middle, one module per command on top, each importing only downwards. import-linter checks the real
package, and a copy with one upward import must fail the same contract."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

PIPELINE = Path(__file__).resolve().parents[1]
LINT = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(config_filename='.importlinter', no_cache=True))"


def lint(root: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(root) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-c", LINT], cwd=root, env=env, capture_output=True, text=True, timeout=300)


def test_every_module_imports_only_from_the_layers_below_it():
    out = lint(PIPELINE)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "1 kept, 0 broken" in out.stdout


def test_an_upward_import_breaks_the_contract(tmp_path):
    shutil.copytree(PIPELINE / "hallmark_models", tmp_path / "hallmark_models",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(PIPELINE / ".importlinter", tmp_path / ".importlinter")
    bundle = tmp_path / "hallmark_models" / "bundle.py"
    bundle.write_text(bundle.read_text() + "\n\ndef _up():\n    from . import release  # noqa: F401\n")
    out = lint(tmp_path)
    assert out.returncode != 0
    assert "hallmark_models.bundle -> hallmark_models.release" in out.stdout
