"""Choosing a fine-tune's epoch by the agent's rule on validation (`pick`): the choice, the checkpoints
it reads and the record it leaves for the lineage check. Scoring a real checkpoint needs torch; the
release scoring it reuses is tested in test_release.py."""

import json

import pytest

from hallmark_models import bundle, pick, variant


def row(epoch, accuracy, phantom=10, refusals=()):
    return {"epoch": epoch, "verdict_accuracy": accuracy, "phantom_items": phantom, "refusals": list(refusals)}


def test_the_best_signable_epoch_is_picked_not_the_best_scoring_one():
    rows = [row(0, 0.57), row(7, 0.99, refusals=["the caps could not all be met"]), row(12, 0.95), row(20, 0.94)]
    assert pick.best_row(rows)["epoch"] == 12


def test_ties_go_to_fewer_items_on_no_pack_then_to_the_later_epoch():
    assert pick.best_row([row(3, 0.95, phantom=40), row(5, 0.95, phantom=30), row(9, 0.94, phantom=1)])["epoch"] == 5
    assert pick.best_row([row(3, 0.95), row(8, 0.95), row(6, 0.95)])["epoch"] == 8


def test_a_run_with_no_signable_epoch_is_refused_with_the_reasons():
    with pytest.raises(ValueError, match="none of the 2 epochs could be signed: calls no counterfeit"):
        pick.best_row([row(0, 0.9, refusals=["calls no counterfeit"]), row(1, 0.9, refusals=["calls no counterfeit"])])


def test_epoch_checkpoints_are_read_in_epoch_order(tmp_path):
    weights = tmp_path / "run" / "weights"
    weights.mkdir(parents=True)
    for name in ("epoch10.pt", "epoch9.pt", "epoch0.pt", "best.pt", "last.pt", "epoch3.pt.tmp"):
        (weights / name).write_bytes(b"x")
    assert [e for e, _ in pick.epoch_checkpoints(tmp_path)] == [0, 9, 10]
    assert pick.epoch_checkpoints(tmp_path / "elsewhere") == []


def test_a_picked_epoch_keeps_the_runs_lineage(tmp_path):
    main_ckpt, model = "a" * 64, "e" * 64
    (tmp_path / "recovered").mkdir()
    (tmp_path / "recovered" / "recovered.pt").write_bytes(b"weights recovered from model.onnx")
    root = {"params": {"epochs": 0}, "epochs_run": 0, "seconds": 0.0,
            "sha256": bundle.sha256_file(tmp_path / "recovered" / "recovered.pt"),
            "recovered_from_onnx": {"file": "model.onnx", "sha256": model}}
    run = {"params": {"imgsz": 224, "lr0": 0.0001, "save_period": 1}, "epochs_run": 26, "seconds": 2460.0,
           "sha256": "b" * 64, "continued_from": {"file": "recovered.pt", "sha256": root["sha256"], "training": root}}
    (tmp_path / "picked").mkdir()
    picked = tmp_path / "picked" / "best.pt"
    picked.write_bytes(b"epoch 14, EMA weights")
    rows = [row(e, 0.9 + e / 1000) for e in range(26)]
    record = pick.picked_record(run, picked, rows[14], rows, 224)
    (tmp_path / "picked" / "training.json").write_text(json.dumps(record))
    assert record["sha256"] == bundle.sha256_file(picked) and record["epochs_run"] == 15
    assert record["picked"]["epoch"] == 14 and record["picked"]["fitness_best_sha256"] == "b" * 64
    found = variant.check_lineage(picked, main_ckpt, model, imgsz=224)
    assert (found["root"], found["stages"], found["epochs_total"]) == ("model.onnx", 1, 15)
    # the run's own record does not describe the picked file
    (tmp_path / "picked" / "training.json").write_text(json.dumps(run))
    with pytest.raises(ValueError, match="describes"):
        variant.check_lineage(picked, main_ckpt, model, imgsz=224)


def test_scored_epochs_are_kept_so_pick_can_run_beside_the_training(tmp_path, monkeypatch):
    weights = tmp_path / "run" / "weights"
    weights.mkdir(parents=True)
    scored = []

    def fake_score(brand_key, w, imgsz, data, composite, tmp):
        scored.append(w.name)
        return {"verdict_accuracy": 0.9, "right": 9, "items": 10, "phantom_items": 1, "missed": 1,
                "thresholds": [0.4, 0.5, 0.9, 0.15], "refusals": []}

    monkeypatch.setattr(pick, "ema_weights", lambda ckpt, out: out)
    monkeypatch.setattr(pick, "score_epoch", fake_score)
    for n in (0, 1):
        (weights / f"epoch{n}.pt").write_bytes(f"epoch {n}".encode())
    with pytest.raises(pick.RunNotFinished, match="still training.*scored 2 epochs"):
        pick.pick("aurora", tmp_path, 224, tmp_path / "data", None)
    assert scored == ["epoch0.pt", "epoch1.pt"]
    (weights / "epoch2.pt").write_bytes(b"epoch 2")
    (weights / "epoch1.pt").write_bytes(b"epoch 1, rewritten")  # another checkpoint under the same name
    rows = pick.scored_rows("aurora", tmp_path, 224, tmp_path / "data", None, tmp_path)
    assert scored == ["epoch0.pt", "epoch1.pt", "epoch1.pt", "epoch2.pt"]
    assert [r["epoch"] for r in rows] == [0, 1, 2]
    pick.scored_rows("aurora", tmp_path, 320, tmp_path / "data", None, tmp_path)  # judged at another size
    assert len(scored) == 7
