"""Runs: the CLI resumes a SIGKILLed deterministic run to the same weights, a NaN stops the run
with the last good checkpoint kept, recipe/data errors fail before the first step."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from tfface import cli
from tfface.training import DataError, NonFiniteLossError, RecipeError, build, load_recipe, train

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def small(data, **extra):
    """Overrides turning the smoke recipe into a few-second run on the small synthetic set."""
    overrides = {"data.train": data, "data.image_size": [32, 32], "data.batch_size": 8,
                 "steps_per_epoch": 6, "checkpoint_every": 4}
    overrides.update(extra)
    return overrides


def as_cli(overrides):
    return [f"--set={k}={json.dumps(v)}" for k, v in overrides.items()]


def checkpoint_tensors(workdir):
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(os.path.join(workdir, "checkpoints")))
    return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
            if k.endswith("VARIABLE_VALUE") and not k.startswith("save_counter")}


def test_sigkilled_deterministic_run_resumes_to_the_uninterrupted_weights(tmp_path, small_synthetic):
    steps = 40
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
               TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    env.pop("TF_CONFIG", None)

    def command(workdir):
        return [sys.executable, "-m", "tfface.cli", "train", "smoke", "--workdir", str(workdir),
                "--steps", str(steps), "--quiet"] + as_cli(small(small_synthetic, deterministic=True))

    whole, killed = tmp_path / "whole", tmp_path / "killed"
    uninterrupted = subprocess.Popen(command(whole), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    victim = subprocess.Popen(command(killed), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    state = killed / "checkpoints" / "checkpoint"
    deadline = time.time() + 240
    while not state.exists() and victim.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    victim.send_signal(signal.SIGKILL)
    _, victim_err = victim.communicate()
    assert state.exists(), f"no checkpoint before the kill: {victim_err[-2000:]}"
    killed_at = int(tf.train.load_checkpoint(tf.train.latest_checkpoint(str(killed / "checkpoints")))
                    .get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE"))
    assert 0 < killed_at < steps and not (killed / "summary.json").exists(), "the run finished before SIGKILL"

    out, err = uninterrupted.communicate(timeout=300)
    assert uninterrupted.returncode == 0, err[-3000:]
    resumed = subprocess.run(command(killed), env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    summary = json.loads((killed / "summary.json").read_text())
    assert summary["steps"] == steps and 0 < summary["resumed_from"] < steps
    expected, got = checkpoint_tensors(str(whole)), checkpoint_tensors(str(killed))
    assert sorted(expected) == sorted(got)
    assert any(k.startswith("backbone/") for k in got) and any(k.startswith("optimizer/") for k in got)
    for key in expected:
        np.testing.assert_array_equal(got[key], expected[key], err_msg=key)
    for name in ("recipe.json", "embedder.keras", "summary.json", "logs"):
        assert (whole / name).exists(), name


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_last_good_checkpoint(tmp_path, small_synthetic):
    # lr jumps to 1e30 at step 5: the weights blow up and the loss turns non-finite soon after.
    schedule = {"learning_rate": 0.01, "unit": "step", "boundaries": [5], "values": [0.01, 1e30],
                "factor": 0.1, "warmup": 0, "warmup_start": 0.0}
    workdir = str(tmp_path / "nan")
    with pytest.raises(NonFiniteLossError, match=r"at step (\d+)") as info:
        train("smoke", workdir, steps=30, progress=False,
              overrides=small(small_synthetic, schedule=schedule, checkpoint_every=2))
    failed_at = int(__import__("re").search(r"at step (\d+)", str(info.value)).group(1))
    assert "last good checkpoint" in str(info.value)
    latest = tf.train.latest_checkpoint(os.path.join(workdir, "checkpoints"))
    assert latest is not None and str(latest) in str(info.value)
    tensors = checkpoint_tensors(workdir)
    assert int(tensors["step/.ATTRIBUTES/VARIABLE_VALUE"]) < failed_at
    for key, value in tensors.items():
        if value.dtype.kind == "f":
            assert np.all(np.isfinite(value)), key
    assert not os.path.exists(os.path.join(workdir, "summary.json"))


def test_recipe_errors_name_the_bad_key(small_synthetic):
    with pytest.raises(RecipeError, match=r"data\.batchsize: unknown key; valid keys in data: .*batch_size"):
        load_recipe("smoke", ["data.batchsize=3"])
    with pytest.raises(RecipeError, match=r"epochz: unknown recipe key"):
        load_recipe("smoke", {"epochz": 3})
    with pytest.raises(RecipeError, match=r"data\.batch_size: expected an integer, got 'eight'"):
        load_recipe("smoke", ["data.batch_size=eight"])
    with pytest.raises(RecipeError, match="unknown recipe 'nope'.*smoke"):
        load_recipe("nope")
    with pytest.raises(RecipeError, match=r"head\.margn: head 'cosface' has no argument 'margn'.*margin"):
        build(load_recipe("smoke", small(small_synthetic, **{"head.margn": 0.3})))
    with pytest.raises(RecipeError, match=r"head: unknown head 'no_such_face'; known: .*arcface"):
        build(load_recipe("smoke", small(small_synthetic, **{"head.name": "no_such_face"})))
    with pytest.raises(RecipeError, match=r"backbone: unknown backbone 'resnet9000'"):
        build(load_recipe("smoke", small(small_synthetic, **{"backbone.name": "resnet9000"})))


def test_data_errors_fail_before_the_first_step(tmp_path, small_synthetic, capsys):
    workdir = tmp_path / "run"
    with pytest.raises(DataError, match=r"labels up to 7 but num_classes is 3"):
        train("smoke", str(workdir), progress=False, overrides=small(small_synthetic, **{"data.num_classes": 3}))
    with pytest.raises(FileNotFoundError, match=r"data\.train.*/no/such/data"):
        build(load_recipe("smoke", small("/no/such/data")))
    assert not (workdir / "checkpoints").exists()
    # The command line reports them with exit status 2 and the message.
    code = cli.main(["train", "smoke", "--workdir", str(tmp_path / "cli"), "--set", "data.batchsize=3"])
    assert code == 2
    assert "data.batchsize" in capsys.readouterr().err


def test_init_from_loads_the_backbone_and_matching_head(tmp_path, small_synthetic):
    from tfface.training import init_from

    source = str(tmp_path / "source")
    train("smoke", source, steps=2, progress=False, overrides=small(small_synthetic))
    saved = checkpoint_tensors(source)

    same = build(load_recipe("smoke", small(small_synthetic)), print_fn=lambda *a: None)
    assert init_from(same.model, source, print_fn=lambda *a: None) == ["backbone", "head"]
    for i, variable in enumerate(same.model.backbone.variables):
        np.testing.assert_array_equal(np.array(variable), saved[f"backbone/{i}/.ATTRIBUTES/VARIABLE_VALUE"])
    np.testing.assert_array_equal(np.array(same.model.head.kernel), saved["head/0/.ATTRIBUTES/VARIABLE_VALUE"])
    assert int(same.optimizer.iterations) == 0  # the optimizer and step are not taken over

    wider = build(load_recipe("smoke", small(small_synthetic, **{"data.num_classes": 12})), print_fn=lambda *a: None)
    before = np.array(wider.model.head.kernel)
    assert init_from(wider.model, source, print_fn=lambda *a: None) == ["backbone"]
    np.testing.assert_array_equal(np.array(wider.model.head.kernel), before)

    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        init_from(wider.model, str(tmp_path / "nothing"))


def test_component_arguments_are_checked_for_every_section(small_synthetic):
    base = small(small_synthetic)
    with pytest.raises(RecipeError, match=r"backbone\.widht: backbone 'tiny' has no argument 'widht'"):
        build(load_recipe("smoke", dict(base, **{"backbone.widht": 3})))
    with pytest.raises(RecipeError, match=r"optimizer\.momentun: optimizer 'sgd' has no argument 'momentun'.*momentum"):
        build(load_recipe("smoke", dict(base, **{"optimizer.momentun": 0.9})))
    with pytest.raises(RecipeError, match=r"optimizer: unknown optimizer 'sgdd'; known: sgd, adam"):
        build(load_recipe("smoke", dict(base, optimizer={"name": "sgdd"})))
    with pytest.raises(RecipeError, match=r"loss\.gamma: loss 'hard_mining' has no argument 'gamma'"):
        build(load_recipe("smoke", dict(base, loss={"name": "hard_mining", "gamma": 2.0})))
    aux = {"centre": {"name": "centre", "weight": 0.01}}
    with pytest.raises(RecipeError, match=r"centres\.beta: centres 'class_centres' has no argument 'beta'.*alpha"):
        build(load_recipe("smoke", dict(base, aux_losses=aux, centres={"name": "class_centres", "beta": 0.5})))
    with pytest.raises(RecipeError, match=r"aux_losses\.centre: loss 'centre' reads class centres; declare them"):
        build(load_recipe("smoke", dict(base, aux_losses=aux)))
    with pytest.raises(RecipeError, match=r"centres: declared, but no auxiliary loss reads class centres"):
        build(load_recipe("smoke", dict(base, centres={"name": "class_centres"})))
    with pytest.raises(RecipeError, match=r"loss: loss 'centre' is a loss on embeddings, not on logits"):
        build(load_recipe("smoke", dict(base, loss={"name": "centre"})))
    with pytest.raises(RecipeError, match=r"aux_losses\.f: loss 'focal' is a loss on logits, not on embeddings"):
        build(load_recipe("smoke", dict(base, aux_losses={"f": {"name": "focal"}})))
    with pytest.raises(RecipeError, match=r"aux_losses\.centre: unknown loss 'center_loss'"):
        build(load_recipe("smoke", dict(base, aux_losses={"centre": {"name": "center_loss"}})))
