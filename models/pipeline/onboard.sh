#!/usr/bin/env bash
# Brand onboarding, one command (models/README.md, "Onboarding a brand"): checks a brand's upload, trains
# its detector from a Hallmark base detector, chooses the rule under the caps, writes and signs the bundle,
# has the agent verify it and scan the held-out photos, and prints what to run next. Installs the pinned
# training environment into models/.venv-train first when it is missing (about 3 GB). Also the training
# container's entry point (deploy/training/Dockerfile).
#
#   models/pipeline/onboard.sh UPLOAD OUT --key KEY [--budget-min 40] [--previous BUNDLE]
#   models/pipeline/onboard.sh --watch INBOX OUT_ROOT --key KEY      # each upload folder marked READY
#
# Exit status: 0 signed; 2 the upload fails its check (nothing trained); 3 the caps cannot be met (nothing
# signed, what would help printed per class); 4 the agent refuses the bundle.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv="${HALLMARK_TRAIN_VENV:-$(dirname "$here")/.venv-train}"
python="${HALLMARK_PYTHON:-$venv/bin/python}"   # the training container has the packages system-wide
if [ -z "${HALLMARK_PYTHON:-}" ] && [ ! -x "$venv/bin/python" ]; then
  stamp="$venv/.requirements.sha256"
  echo "onboard: installing the training environment into $venv (about 3 GB)" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$here/requirements-train.txt"
  sha256sum "$here/requirements-train.txt" | cut -d' ' -f1 > "$stamp"
fi
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS="${OMP_NUM_THREADS:-$(nproc)}"
PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}" exec "$python" -m hallmark_models.onboard "$@"
