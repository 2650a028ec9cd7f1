"""Several training runs side by side on one (GPU) host: the cloud's training step for a batch of brands.

    python -m hallmark_models.train_many --work /tmp/hallmark --budget-min 6 \
        --runs northwind:yolov5n:320 aurora:yolov5n:320 aurora:yolov5s:320 [--snapshot-to DIR]

Regenerates each brand's data (`generate`, same seeds as `pipeline`), then trains every run as its own
`train` process to the same wall-clock budget. With `--snapshot-to`, each run's best weights (optimizer
stripped), results and log are packed into `<run>.tar` there every minute, so a host that is taken back
mid-way still leaves the best checkpoint so far. Then, on any machine, `pipeline --weights` bundles one.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tarfile
import time
from pathlib import Path

from .train import brand_hyperparameters

HERE = Path(__file__).resolve().parents[1]  # models/pipeline: the package's root for `python -m`


def _python(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", f"hallmark_models.{module}", *args]


def snapshot(run_dir: Path, dest: Path) -> bool:
    """Packs one run's best checkpoint (without optimizer state), results and log into dest/<run>.tar."""
    from . import yolo_env  # noqa: F401
    from yolov5.utils.general import strip_optimizer

    best = run_dir / "run" / "weights" / "best.pt"
    if not best.exists():
        return False
    stripped = run_dir / "best-stripped.pt"
    try:
        strip_optimizer(best, stripped)
    except Exception:  # being written right now: the next snapshot will have it
        return False
    tmp = dest / f"{run_dir.name}.tar.part"
    with tarfile.open(tmp, "w") as tar:
        tar.add(stripped, arcname=f"{run_dir.name}/best.pt")
        for name in ("run/results.csv", "training.json", "train.log"):
            if (run_dir / name).exists():
                tar.add(run_dir / name, arcname=f"{run_dir.name}/{Path(name).name}")
    tmp.replace(dest / f"{run_dir.name}.tar")
    return True


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--runs", nargs="+", required=True, metavar="BRAND:CFG:IMGSZ")
    ap.add_argument("--budget-min", type=float, required=True, help="wall-clock training budget per run")
    ap.add_argument("--counts", type=int, nargs=3, default=(300, 80, 120), metavar=("TRAIN", "VAL", "TEST"))
    ap.add_argument("--workers", type=int, default=3, help="data-loading processes per run")
    ap.add_argument("--snapshot-to", type=Path)
    args = ap.parse_args(argv)
    runs = [tuple(r.split(":")) for r in args.runs]

    gens = []
    for brand in sorted({r[0] for r in runs}):
        data = args.work / brand / "data"
        if not (data / "data.yaml").exists():
            gens.append(subprocess.Popen(_python("generate", "--brand", brand, "--out", str(data),
                                                 *(f"--{k}={v}" for k, v in zip(("train", "val", "test"), args.counts))),
                                         cwd=HERE))
    if any(g.wait() for g in gens):
        sys.exit("train_many: data generation failed")

    procs = {}
    for brand, cfg, imgsz in runs:
        run_dir = args.work / f"{brand}-{cfg}-{imgsz}"
        run_dir.mkdir(parents=True, exist_ok=True)
        own = [f"--set={k}={v}" for k, v in brand_hyperparameters(brand).items()]
        cmd = _python("train", "--data-dir", str(args.work / brand / "data"), "--model-dir", str(run_dir),
                      "--hyperparameters", str(HERE / "hyperparameters.json"), *own, "--set", f"cfg={cfg}.yaml",
                      "--set", f"imgsz={imgsz}", "--set", "epochs=2000", "--set", f"time_budget_min={args.budget_min}",
                      "--set", f"workers={args.workers}")
        log = (run_dir / "train.log").open("w")
        procs[run_dir] = subprocess.Popen(cmd, cwd=HERE, stdout=log, stderr=subprocess.STDOUT)
        print(f"train_many: started {run_dir.name}", flush=True)

    if args.snapshot_to:
        args.snapshot_to.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + args.budget_min * 60 + 600  # budget plus start-up and final validation
    last_snapshot = time.monotonic()
    while any(p.poll() is None for p in procs.values()) and time.monotonic() < deadline:
        time.sleep(5)
        if args.snapshot_to and time.monotonic() - last_snapshot >= 60:
            for run_dir in procs:
                snapshot(run_dir, args.snapshot_to)
            last_snapshot = time.monotonic()
    failed = []
    for run_dir, p in procs.items():
        if p.poll() is None:
            p.kill()
        if args.snapshot_to:
            snapshot(run_dir, args.snapshot_to)
        if p.wait() != 0:
            failed.append(run_dir.name)
        print(f"train_many: {run_dir.name} exit {p.returncode}", flush=True)
    if failed:
        sys.exit(f"train_many: failed runs: {', '.join(failed)}")


if __name__ == "__main__":
    main()
