"""Per-item verdict scoring: the store's question, "was a genuine pack called genuine and a counterfeit
called counterfeit or inconclusive?", and the choice of the manifest's verdict thresholds. Pure numpy.

A verdict for a pack comes from the detections overlapping it (IoU >= 0.5), by the same rule as the
agent (agent/src/verdict/simple.rs): a counterfeit class at or above the counterfeit threshold ->
counterfeit (counterfeit evidence is never outvoted); else the best genuine class at or above the genuine
threshold -> genuine (of that class's product); anything weaker -> inconclusive; nothing -> missed.
A genuine pack is right only when called genuine *and* the right product; a counterfeit is right when
called counterfeit or inconclusive. A missed pack is wrong either way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

VERDICTS = ("genuine", "counterfeit", "inconclusive", "missed")


@dataclass
class Match:
    gt_class: int
    pred_class: int  # the most confident overlapping detection's class; -1 when nothing overlapped
    conf: float
    framing: str
    genuine_class: int = -1  # the best genuine-role detection overlapping the pack
    genuine_conf: float = 0.0
    counterfeit_conf: float = 0.0  # the best counterfeit-role detection overlapping the pack


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in a (N, 4) with every box in b (M, 4), boxes as x1, y1, x2, y2."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    return inter / (area_a[:, None] + area_b[None, :] - inter + 1e-9)


def match_items(gt: np.ndarray, det: np.ndarray, framing: str, roles: list[str], iou_thr: float = 0.5) -> list[Match]:
    """gt: (N, 5) class, x1, y1, x2, y2; det: (M, 6) x1, y1, x2, y2, conf, class."""
    ious = iou_matrix(gt[:, 1:5], det[:, :4]) if len(det) else np.zeros((len(gt), 0))
    out = []
    for i, row in enumerate(gt):
        cand = np.nonzero(ious[i] >= iou_thr)[0] if ious.shape[1] else []
        m = Match(int(row[0]), -1, 0.0, framing)
        for j in sorted(cand, key=lambda j: -det[j, 4]):
            cls, conf = int(det[j, 5]), float(det[j, 4])
            if m.pred_class < 0:
                m.pred_class, m.conf = cls, conf
            if roles[cls] == "genuine" and conf > m.genuine_conf:
                m.genuine_class, m.genuine_conf = cls, conf
            if roles[cls] == "counterfeit":
                m.counterfeit_conf = max(m.counterfeit_conf, conf)
        out.append(m)
    return out


def verdict(m: Match, thr_genuine: float, thr_counterfeit: float) -> str:
    if m.pred_class < 0:
        return "missed"
    if m.counterfeit_conf >= thr_counterfeit:
        return "counterfeit"
    if m.genuine_conf >= thr_genuine:
        return "genuine"
    return "inconclusive"


def score(matches: list[Match], roles: list[str], products: list[str], thr_g: float, thr_c: float) -> dict:
    right = 0
    fake_total = fake_as_genuine = genuine_total = genuine_right = 0
    table = np.zeros((2, len(VERDICTS)), dtype=int)  # rows: genuine, counterfeit packs
    for m in matches:
        v = verdict(m, thr_g, thr_c)
        genuine = roles[m.gt_class] == "genuine"
        table[0 if genuine else 1, VERDICTS.index(v)] += 1
        if genuine:
            genuine_total += 1
            ok = v == "genuine" and products[m.genuine_class] == products[m.gt_class]
            genuine_right += ok
        else:
            fake_total += 1
            fake_as_genuine += v == "genuine"
            ok = v in ("counterfeit", "inconclusive")
        right += ok
    n = max(1, len(matches))
    return {
        "items": len(matches),
        "verdict_accuracy": right / n,
        "genuine_called_genuine": genuine_right / max(1, genuine_total),
        "counterfeit_called_genuine": fake_as_genuine / max(1, fake_total),
        "table": table.tolist(),
    }


def choose_thresholds(matches: list[Match], roles: list[str], products: list[str],
                      max_fake_as_genuine: float = 0.01) -> tuple[float, float, dict]:
    """The (genuine, counterfeit) thresholds that give the best verdict accuracy on these matches while
    calling at most `max_fake_as_genuine` of counterfeits genuine; ties go to the stricter genuine one."""
    best = None
    grid = np.round(np.arange(0.25, 0.951, 0.05), 2)
    for tg in grid:
        for tc in grid:
            s = score(matches, roles, products, float(tg), float(tc))
            if s["counterfeit_called_genuine"] > max_fake_as_genuine:
                continue
            key = (round(s["verdict_accuracy"], 6), tg, -tc)
            if best is None or key > best[0]:
                best = (key, float(tg), float(tc), s)
    if best is None:  # nothing meets the bound: be as strict as the grid allows
        tg, tc = float(grid[-1]), float(grid[0])
        return tg, tc, score(matches, roles, products, tg, tc)
    return best[1], best[2], best[3]
