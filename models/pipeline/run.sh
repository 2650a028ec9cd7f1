#!/usr/bin/env bash
# The whole model pipeline, one command: installs the pinned training environment, makes the demo
# publisher key if there is none, then for each brand regenerates the data, trains YOLOv5n from scratch,
# exports ONNX, evaluates on the held-out split and writes the signed bundle under models/<brand>/.
# Trains on a CUDA GPU when there is one, else on the CPU (slow: hours a brand on 2 cores). Never run by CI.
#
#   models/pipeline/run.sh                      # every brand
#   BRANDS=aurora EPOCHS=300 models/pipeline/run.sh
#   BUDGET_MIN=90 models/pipeline/run.sh         # train to a wall-clock budget per brand instead of epochs
#   REUSE=1 models/pipeline/run.sh              # keep existing data and checkpoints (re-export/evaluate/bundle)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
models=$(dirname "$here")
venv="$models/.venv-train"

stamp="$venv/.requirements.sha256"
want=$(sha256sum "$here/requirements-train.txt" | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "pipeline: installing the training environment into $venv (about 3 GB)" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$here/requirements-train.txt"
  echo "$want" > "$stamp"
fi

key="$models/keys/demo-publisher.key.pem"
if [ ! -f "$key" ]; then
  echo "pipeline: no demo publisher key; generating a new pair (commit the .pub.pem, never the .key.pem)" >&2
  (cd "$here" && "$venv/bin/python" -m hallmark_models.bundle keygen --private "$key" \
     --public "$models/keys/demo-publisher.pub.pem")
fi

extra=()
[ -n "${REUSE:-}" ] && extra+=(--reuse)
[ -n "${BUDGET_MIN:-}" ] && extra+=(--budget-min "$BUDGET_MIN")
for brand in ${BRANDS:-northwind aurora}; do
  echo "pipeline: $brand" >&2
  (cd "$here" && "$venv/bin/python" -m hallmark_models.pipeline --brand "$brand" \
     --epochs "${EPOCHS:-300}" --imgsz "${IMGSZ:-320}" --key "$key" "${extra[@]}")
done
