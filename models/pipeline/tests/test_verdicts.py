import numpy as np

from hallmark_models import verdicts as V

ROLES = ["genuine", "counterfeit", "genuine", "counterfeit"]
PRODUCTS = ["a", "a", "b", "b"]


def test_iou_of_identical_and_disjoint_boxes():
    a = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], dtype=float)
    m = V.iou_matrix(a, a)
    assert np.allclose(np.diag(m), 1.0) and m[0, 1] == 0.0


def test_match_takes_the_most_confident_overlapping_detection():
    gt = np.array([[0, 0, 0, 100, 100]], dtype=float)
    det = np.array([[2, 2, 98, 98, 0.6, 0], [1, 1, 99, 99, 0.9, 1], [300, 300, 400, 400, 0.99, 2]])
    (m,) = V.match_items(gt, det, "kiosk", ROLES)
    assert (m.pred_class, m.conf) == (1, 0.9)
    assert (m.genuine_class, m.genuine_conf, m.counterfeit_conf) == (0, 0.6, 0.9)


def test_unmatched_pack_is_missed_and_wrong():
    gt = np.array([[0, 0, 0, 100, 100]], dtype=float)
    (m,) = V.match_items(gt, np.zeros((0, 6)), "kiosk", ROLES)
    assert V.verdict(m, 0.5, 0.5) == "missed"
    assert V.score([m], ROLES, PRODUCTS, 0.5, 0.5)["verdict_accuracy"] == 0.0


def test_counterfeit_evidence_is_never_outvoted():
    m = V.Match(0, 0, 0.9, "kiosk", genuine_class=0, genuine_conf=0.9, counterfeit_conf=0.6)
    assert V.verdict(m, 0.5, 0.5) == "counterfeit"
    assert V.verdict(m, 0.5, 0.7) == "genuine"


def g(gt, cls, conf):
    return V.Match(gt, cls, conf, "kiosk", genuine_class=cls, genuine_conf=conf)


def f(gt, cls, conf):
    return V.Match(gt, cls, conf, "kiosk", counterfeit_conf=conf)


def test_scoring_rules():
    ms = [
        g(0, 0, 0.9),  # genuine a -> genuine a: right
        g(0, 2, 0.9),  # genuine a -> genuine b: wrong product
        f(1, 1, 0.3),  # fake -> weak fake: inconclusive, right
        g(3, 2, 0.8),  # fake b -> genuine b: the costly error
    ]
    s = V.score(ms, ROLES, PRODUCTS, 0.5, 0.5)
    assert s["verdict_accuracy"] == 0.5
    assert s["counterfeit_called_genuine"] == 0.5
    assert s["table"] == [[2, 0, 0, 0], [1, 0, 1, 0]]


def test_threshold_choice_keeps_fakes_from_being_called_genuine():
    ms = [g(0, 0, 0.9), g(0, 0, 0.7), g(1, 0, 0.6), f(1, 1, 0.8)]
    tg, tc, s = V.choose_thresholds(ms, ROLES, PRODUCTS)
    assert s["counterfeit_called_genuine"] == 0.0
    assert 0.6 < tg <= 0.7 and s["verdict_accuracy"] == 1.0
