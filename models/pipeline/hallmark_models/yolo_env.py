"""Environment for the packaged yolov5 on an offline machine: no hub downloads, no writes to ~/.config.

Import this module before anything from `yolov5`."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

_CONFIG = Path(os.environ.get("HALLMARK_YOLO_CONFIG", Path(__file__).resolve().parents[2] / "work" / ".yolo"))
_CONFIG.mkdir(parents=True, exist_ok=True)
for var in ("YOLOV5_CONFIG_DIR", "YOLO_CONFIG_DIR", "MPLCONFIGDIR"):
    os.environ.setdefault(var, str(_CONFIG))
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLOv5_AUTOINSTALL", "false")
os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")  # our own checkpoints, written by yolov5
# On a small shared machine, OpenMP threads that spin at barriers starve everything else, this job
# included (measured: 8 s per batch instead of 0.7 with a second job running). Sleep instead.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# yolov5 wants Arial.ttf for plots and tries to download it; any TTF under that name will do.
_arial = _CONFIG / "Arial.ttf"
if not _arial.exists():
    shutil.copy(Path(__file__).parent / "fonts" / "DejaVuSans.ttf", _arial)

# yolov5's validation calls np.trapz, which numpy 2.4 removed; same function, new name.
import numpy as _np  # noqa: E402

if not hasattr(_np, "trapz"):
    _np.trapz = _np.trapezoid
