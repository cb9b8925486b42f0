"""``tfface demo --quick`` end to end in a subprocess: every stage runs, the held-out accuracy is far
above chance, the export serves the same embeddings as the Keras model, TensorBoard logs exist.

The full-size demo (``tfface demo``, about two minutes) is the same code with more data and
epochs; the quick run checks the whole path in under a minute.
"""
import glob
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _demo(*args, timeout=300):
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([sys.executable, "-m", "tfface.cli", "demo", *args],
                          capture_output=True, text=True, env=env, timeout=timeout)


def test_quick_demo_runs_every_stage(tmp_path):
    workdir = tmp_path / "demo"
    proc = _demo("--quick", "--workdir", str(workdir))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    for i, stage in enumerate(("synth", "build", "train", "eval", "export", "serve"), start=1):
        assert f"[{i}/6] {stage}:" in out, f"stage {stage} not announced"
    assert "stage" in out and "total" in out and "demo passed" in out
    assert f"tensorboard --logdir {workdir / 'run' / 'logs'}" in out

    report = json.loads((workdir / "demo.json").read_text())
    assert report["passed"] is True and report["quick"] is True
    stages = report["stages"]
    # held-out identities: far above chance (0.5) on the 10-fold protocol
    assert stages["eval"]["accuracy"] >= 0.65
    assert 0.5 < stages["eval"]["auc"] <= 1.0
    assert stages["serve"]["served_equals_keras"] is True
    assert {p["pair"] for p in stages["serve"]["pairs"]} == {"matched", "mismatched"}
    assert stages["build"]["written"] == stages["synth"]["train_images"]
    assert (workdir / "export" / "1" / "saved_model.pb").is_file()
    assert glob.glob(str(workdir / "run" / "logs" / "**" / "events.out.tfevents.*"), recursive=True)
    assert glob.glob(str(workdir / "run" / "logs" / "eval" / "events.out.tfevents.*"))


def test_workdir_rules(tmp_path):
    """A rerun clears only a directory the demo made; anything else is refused untouched."""
    import pytest

    from tfface.commands.demo import MARKER, _prepare_workdir

    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not made by 'tfface demo'"):
        _prepare_workdir(str(tmp_path))
    assert (tmp_path / "precious.txt").read_text() == "keep me"

    ours = tmp_path / "demo"
    _prepare_workdir(str(ours))
    (ours / "data").mkdir()
    (ours / "data" / "old.jpg").write_text("x")
    _prepare_workdir(str(ours))
    assert sorted(os.listdir(ours)) == [MARKER]
