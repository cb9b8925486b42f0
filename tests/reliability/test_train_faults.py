"""Hostile inputs to ``tfface train``: nothing lost, nothing silently wrong.

Each case checks the message, the exit status (docs/reliability.md: 2 bad input, 3 output
unwritable, 4 work directory locked), that the previous outputs are intact, and, for resumes,
the step the run resumed from. One small run (8 steps, checkpoints at 4 and 8) is trained once
per module and copied per test.
"""
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tfface import cli, files
from tfface.training import train
from tfface.training.callbacks import CheckpointStore, list_checkpoints, verify_checkpoint

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def small(data, **extra):
    """The smoke recipe as a few-second run on 8 identities of 32x32 crops (no XLA: nothing to
    compile)."""
    overrides = {"data.train": data, "data.image_size": [32, 32], "data.batch_size": 8,
                 "steps_per_epoch": 6, "checkpoint_every": 4, "jit_compile": False}
    overrides.update(extra)
    return overrides


def as_cli(overrides):
    return [f"--set={k}={json.dumps(v)}" for k, v in overrides.items()]


def tfface_train(capsys, workdir, data, *extra, steps=None, **overrides):
    """``tfface train smoke`` in this process: (exit status, stderr, stdout)."""
    argv = ["train", "smoke", "--workdir", str(workdir), "--quiet"] + as_cli(small(data, **overrides))
    if steps is not None:
        argv += ["--steps", str(steps)]
    capsys.readouterr()
    code = cli.main(argv + list(extra))
    out = capsys.readouterr()
    return code, out.err, out.out


def digest(folder):
    """{relative path: sha256} of every file under ``folder`` (the lock file excluded)."""
    found = {}
    for root, _, names in os.walk(folder):
        for name in names:
            if name == files.LOCK_NAME:
                continue
            path = os.path.join(root, name)
            with open(path, "rb") as handle:
                found[os.path.relpath(path, folder)] = hashlib.sha256(handle.read()).hexdigest()
    return found


def saved_step(prefix):
    return int(tf.train.load_checkpoint(prefix).get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE"))


def strict_json(path):
    def refuse(name):
        raise ValueError(f"non-standard JSON constant {name}")

    with open(path) as handle:
        return json.load(handle, parse_constant=refuse)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """8 synthetic identities of 32x32 crops, as an image folder."""
    from tfface.data import generate_synthetic

    root = tmp_path_factory.mktemp("faults_data")
    generate_synthetic(str(root), num_identities=8, num_test_identities=4, image_size=32,
                       min_images=6, max_images=10, folds=0)
    return str(root / "train")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data):
    """A finished 8-step run: checkpoints ckpt-4 and ckpt-8, summary.json, embedder.keras."""
    workdir = str(tmp_path_factory.mktemp("faults_run") / "run")
    train("smoke", workdir, steps=8, progress=False, overrides=small(data))
    assert [s for s, _ in list_checkpoints(os.path.join(workdir, "checkpoints"))] == [8, 4]
    return workdir


@pytest.fixture
def run(trained, tmp_path):
    """A private copy of the trained run."""
    copy = tmp_path / "run"
    shutil.copytree(trained, copy)
    return copy


@pytest.fixture(scope="module")
def records(tmp_path_factory, data):
    """The image folder built into TFRecords (labels.json, stats.json)."""
    from tfface.data import build_tfrecords

    out = tmp_path_factory.mktemp("faults_records") / "records"
    build_tfrecords(data, str(out), progress=False)
    return str(out)


# ---------------------------------------------------------------------------------------------
# resume never goes backwards silently


def test_a_missing_state_file_and_a_stale_lock_still_resume_from_the_newest_checkpoint(
        run, data, capsys):
    os.remove(run / "checkpoints" / "checkpoint")
    (run / "summary.json").write_text('{"steps": 8, "final": {"loss": NaN')  # malformed, replaced
    # A run killed with SIGKILL while holding the work directory's lock.
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from tfface.files import DirLock; "
         f"DirLock({str(run)!r}, 'tfface train').acquire(); print('held', flush=True); time.sleep(60)"],
        env=dict(os.environ, PYTHONPATH=ROOT), stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    holder.send_signal(signal.SIGKILL)
    holder.wait()

    code, err, out = tfface_train(capsys, run, data, steps=12)
    assert code == 0, err
    # Said even with --quiet.
    assert re.search(r"resuming from \S*ckpt-8 \(step 8/12\): the newest checkpoint that loads; the "
                     r"state file checkpoints/checkpoint is missing", out), out
    summary = strict_json(run / "summary.json")
    assert summary["resumed_from"] == 8 and summary["steps"] == 12
    # keep_checkpoints 3: 4, 8 and 12; the state file is back and names the newest.
    assert [s for s, _ in list_checkpoints(str(run / "checkpoints"))] == [12, 8, 4]
    assert os.path.basename(tf.train.latest_checkpoint(str(run / "checkpoints"))) == "ckpt-12"
    assert saved_step(str(run / "checkpoints" / "ckpt-12")) == 12
    assert files.leftovers(str(run)) == [] and files.leftovers(str(run / "checkpoints")) == []


def test_a_missing_newest_index_resumes_from_the_previous_checkpoint_and_says_so(run, data, capsys):
    os.remove(run / "checkpoints" / "ckpt-8.index")
    messages = []
    summary = train("smoke", str(run), steps=8, overrides=small(data), print_fn=messages.append)
    text = "\n".join(messages)
    assert re.search(r"resuming from .*ckpt-4 \(step 4/8\): the newest checkpoint that loads; "
                     r"the state file named ckpt-8", text), text
    assert summary["resumed_from"] == 4 and summary["steps"] == 8
    assert strict_json(run / "summary.json")["resumed_from"] == 4
    assert saved_step(str(run / "checkpoints" / "ckpt-8")) == 8


def test_a_corrupt_newest_checkpoint_is_skipped_kept_aside_and_named(run, data, capsys):
    ckpt = run / "checkpoints"
    data_file = next(p for p in ckpt.iterdir() if p.name.startswith("ckpt-8.data-"))
    raw = bytearray(data_file.read_bytes())
    for i in range(len(raw) // 3, len(raw) // 3 + 64):
        raw[i] ^= 0xFF
    data_file.write_bytes(bytes(raw))
    assert verify_checkpoint(str(ckpt / "ckpt-8")) is not None  # TensorFlow's CRC catches it
    damaged = hashlib.sha256(bytes(raw)).hexdigest()

    messages = []
    summary = train("smoke", str(run), steps=10, overrides=small(data), print_fn=messages.append)
    text = "\n".join(messages)
    assert re.search(r"skipping checkpoint .*ckpt-8: unreadable", text), text
    assert re.search(r"resuming from .*ckpt-4 \(step 4/10\)", text), text
    assert summary["resumed_from"] == 4 and summary["steps"] == 10
    # The damaged checkpoint is kept for inspection, out of the way of the new ckpt-8.
    aside = ckpt / "unreadable"
    assert hashlib.sha256((aside / data_file.name).read_bytes()).hexdigest() == damaged
    assert (aside / "ckpt-8.index").exists()
    assert [s for s, _ in list_checkpoints(str(ckpt))] == [10, 8, 4]
    assert verify_checkpoint(str(ckpt / "ckpt-8")) is None and saved_step(str(ckpt / "ckpt-8")) == 8


def test_no_loadable_checkpoint_refuses_to_start_over_until_restart(run, data, capsys):
    ckpt = run / "checkpoints"
    for path in ckpt.iterdir():
        if ".data-" in path.name:
            path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    before = digest(str(run))
    code, err, _ = tfface_train(capsys, run, data, steps=12)
    assert code == files.EXIT_INPUT
    assert "holds 2 checkpoint(s) but none loads" in err and "ckpt-8: unreadable" in err
    assert "--restart" in err
    assert digest(str(run)) == before  # nothing deleted, nothing rewritten

    code, err, out = tfface_train(capsys, run, data, "--restart", steps=4)
    assert code == 0, err
    assert "--restart: the previous run was moved to" in out
    summary = strict_json(run / "summary.json")
    assert summary["resumed_from"] == 0 and summary["steps"] == 4
    previous = [p for p in run.iterdir() if p.name.startswith("previous-")]
    assert len(previous) == 1
    moved = digest(str(previous[0]))
    assert moved == before  # the old run, every file, byte for byte


def test_rotation_never_deletes_the_checkpoint_just_written(tmp_path):
    variable = tf.Variable(np.arange(16, dtype="float32"))
    checkpoint = tf.train.Checkpoint(v=variable)
    folder = str(tmp_path / "ckpt")
    store = CheckpointStore(checkpoint, folder, keep=1)
    for step in (1, 2, 3):
        variable.assign(np.full(16, step, "float32"))
        store.save(step)
    assert [s for s, _ in list_checkpoints(folder)] == [3]
    assert tf.train.latest_checkpoint(folder) == os.path.join(folder, "ckpt-3")
    # A newer checkpoint left from elsewhere is neither deleted nor allowed to push out ours.
    shutil.copy(os.path.join(folder, "ckpt-3.index"), os.path.join(folder, "ckpt-9.index"))
    variable.assign(np.full(16, 5.0, "float32"))
    store.save(5)
    assert [s for s, _ in list_checkpoints(folder)] == [9, 5]
    reader = tf.train.load_checkpoint(os.path.join(folder, "ckpt-5"))
    np.testing.assert_array_equal(reader.get_tensor("v/.ATTRIBUTES/VARIABLE_VALUE"), np.full(16, 5.0))
    with pytest.raises(ValueError, match="keep: expected an integer >= 1"):
        CheckpointStore(checkpoint, folder, keep=0)


def test_a_full_disk_during_a_save_keeps_the_previous_checkpoint(tmp_path):
    """RLIMIT_FSIZE below the checkpoint's size: the write fails like a full disk."""
    import resource

    variable = tf.Variable(np.ones(4096, "float32"))  # 16 KiB of data
    folder = str(tmp_path / "ckpt")
    store = CheckpointStore(tf.train.Checkpoint(v=variable), folder, keep=3)
    store.save(1)
    before = digest(folder)
    variable.assign(np.full(4096, 2.0, "float32"))
    limits = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, limits[1]))
        with pytest.raises(files.OutputError) as info:
            store.save(2)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limits)
        signal.signal(signal.SIGXFSZ, handler)
    assert info.value.exit_code == files.EXIT_OUTPUT
    message = str(info.value.args[-1])
    assert "ckpt-2" in message and "file size limit" in message and "ckpt-1" in message
    assert digest(folder) == before  # ckpt-1 and the state file untouched, no temporary left
    assert tf.train.latest_checkpoint(folder) == os.path.join(folder, "ckpt-1")


@pytest.mark.slow
def test_the_command_exits_3_on_a_full_disk_with_the_previous_checkpoints_intact(run, data):
    """The whole command under a file-size limit that the checkpoint exceeds."""
    ckpt = run / "checkpoints"
    size = max(p.stat().st_size for p in ckpt.iterdir() if ".data-" in p.name)
    before = digest(str(ckpt))
    script = (
        "import resource, signal, sys\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        f"resource.setrlimit(resource.RLIMIT_FSIZE, ({size // 2}, resource.RLIM_INFINITY))\n"
        "from tfface import cli\n"
        "sys.exit(cli.main(sys.argv[1:]))\n")
    argv = ["train", "smoke", "--workdir", str(run), "--steps", "12", "--quiet"] + as_cli(small(data))
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    env.pop("TF_CONFIG", None)
    done = subprocess.run([sys.executable, "-c", script] + argv, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == files.EXIT_OUTPUT, done.stderr[-3000:]
    assert re.search(r"tfface train: cannot write the checkpoint \S*ckpt-12: ", done.stderr)
    assert digest(str(ckpt)) == before


# ---------------------------------------------------------------------------------------------
# one run per work directory


def test_a_second_run_on_a_locked_workdir_fails_at_once_naming_the_holder(run, data, capsys):
    before = digest(str(run))
    with files.DirLock(str(run), "tfface train (the other run)"):
        code, err, _ = tfface_train(capsys, run, data, steps=12)
    assert code == files.EXIT_BUSY
    assert f"pid {os.getpid()}" in err and "the other run" in err and "in use" in err
    assert digest(str(run)) == before


# ---------------------------------------------------------------------------------------------
# bad input: a message and status 2, before anything is written


@pytest.mark.parametrize("setting, message", [
    ("--set=data=5", "data: expected a Data mapping, got 5"),
    ("--set=keep_checkpoints=0", "keep_checkpoints: expected an integer >= 1"),
    ("--set=seed=-1", "seed: expected an integer in [0, 2**32), got -1"),
    ("--set=schedule.learning_rate=-0.1", "schedule.learning_rate: expected a number > 0, got -0.1"),
    ("--set=schedule.factor=-0.1", "schedule.factor: expected a number in (0, 1], got -0.1"),
])
def test_bad_recipe_values_exit_2_naming_the_key(tmp_path, setting, message, capsys):
    workdir = tmp_path / "run"
    code = cli.main(["train", "smoke", "--workdir", str(workdir), setting])
    assert code == files.EXIT_INPUT
    assert message in capsys.readouterr().err
    assert not workdir.exists()


def test_negative_steps_exit_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["train", "smoke", "--workdir", str(tmp_path / "run"), "--steps", "-5"])
    assert info.value.code == files.EXIT_INPUT
    assert "--steps: expected an integer > 0, got '-5'" in capsys.readouterr().err
    with pytest.raises(Exception, match=r"steps: expected an integer > 0, got -5"):
        train("smoke", str(tmp_path / "lib"), steps=-5, progress=False)


def test_a_malformed_recipe_json_in_the_workdir_exits_2_and_is_left_alone(run, data, capsys):
    (run / "recipe.json").write_text('{"name": "smoke", "data": {')
    before = digest(str(run))
    code, err, _ = tfface_train(capsys, run, data, steps=12)
    assert code == files.EXIT_INPUT
    assert "recipe.json is not valid JSON" in err and "--restart" in err
    assert digest(str(run)) == before


def test_a_different_recipe_is_refused_and_restart_is_offered(run, data, capsys):
    before = digest(str(run))
    code, err, _ = tfface_train(capsys, run, data, steps=12, **{"head.margin": 0.3})
    assert code == files.EXIT_INPUT
    assert "different recipe (changed: head.margin)" in err and "--restart" in err
    assert digest(str(run)) == before


@pytest.mark.parametrize("name, text, message", [
    ("labels.json", '{"id0": 0, "id1": ', "labels file .*labels.json is not valid JSON"),
    ("stats.json", '{"written": 5', "stats file .*stats.json is not valid JSON"),
    ("labels.json", "{}", "labels.json lists no identities"),
    ("labels.json", '["a", "b"]', "labels.json is not a mapping of identity -> label"),
])
def test_malformed_data_set_files_exit_2_naming_the_file(tmp_path, records, name, text, message, capsys):
    data = tmp_path / "records"
    shutil.copytree(records, data)
    (data / name).write_text(text)
    workdir = tmp_path / "run"
    code, err, _ = tfface_train(capsys, workdir, str(data), steps=4)
    assert code == files.EXIT_INPUT
    assert re.search(message, err), err
    assert not (workdir / "recipe.json").exists() and not (workdir / "checkpoints").exists()


def test_an_empty_data_folder_exits_2_naming_it(tmp_path, capsys):
    empty = tmp_path / "faces"
    (empty / "loose").mkdir(parents=True)
    (empty / "readme.txt").write_text("no identity folders here")
    code, err, _ = tfface_train(capsys, tmp_path / "run", str(empty), steps=4)
    assert code == files.EXIT_INPUT
    assert str(empty) in err and "identity sub-folders" in err


def test_crops_of_another_size_stop_before_training_and_recipe_json_waits(tmp_path, data, capsys):
    workdir = tmp_path / "run"
    code, err, _ = tfface_train(capsys, workdir, data, steps=4, **{"data.image_size": [40, 40]})
    assert code == files.EXIT_INPUT
    assert "holds 32x32 crops but data.image_size is 40x40" in err and "data.resize=true" in err
    # The failed run recorded no recipe, so the corrected rerun is not refused.
    assert not (workdir / "recipe.json").exists()
    from tfface.training import build, load_recipe

    resized = build(load_recipe("smoke", small(data, **{"data.image_size": [40, 40], "data.resize": True})),
                    print_fn=lambda *a: None)
    images, _ = next(iter(resized.dataset(0).take(1)))
    assert tuple(images.shape[1:3]) == (40, 40)


def test_a_tfrecord_build_of_another_crop_size_is_refused(tmp_path, records, capsys):
    # Read from the records themselves (the synthetic crops are 32x32) ...
    code, err, _ = tfface_train(capsys, tmp_path / "run", records, steps=4, **{"data.image_size": [40, 40]})
    assert code == files.EXIT_INPUT and "holds 32x32 crops but data.image_size is 40x40" in err
    # ... or from the size the build recorded in stats.json.
    data = tmp_path / "records"
    shutil.copytree(records, data)
    stats = json.loads((data / "stats.json").read_text())
    (data / "stats.json").write_text(json.dumps(dict(stats, image_size=[160, 160])))
    code, err, _ = tfface_train(capsys, tmp_path / "run", str(data), steps=4)
    assert code == files.EXIT_INPUT and "holds 160x160 crops but data.image_size is 32x32" in err
    assert not (tmp_path / "run" / "recipe.json").exists()


def test_a_truncated_keras_file_as_init_from_exits_2(tmp_path, trained, data, capsys):
    broken = tmp_path / "embedder.keras"
    raw = open(os.path.join(trained, "embedder.keras"), "rb").read()
    broken.write_bytes(raw[: len(raw) // 2])
    workdir = tmp_path / "run"
    code, err, _ = tfface_train(capsys, workdir, data, steps=4, init_from=str(broken))
    assert code == files.EXIT_INPUT
    assert f"init_from: {broken} is not a readable .keras model" in err
    assert not (workdir / "recipe.json").exists() and not (workdir / "checkpoints").exists()


# ---------------------------------------------------------------------------------------------
# outputs that cannot be written: status 3


def test_a_workdir_that_is_a_file_or_under_a_file_exits_3(tmp_path, data, capsys):
    path = tmp_path / "notes.txt"
    path.write_text("keep me")
    code, err, _ = tfface_train(capsys, path, data, steps=4)
    assert code == files.EXIT_OUTPUT and "notes.txt" in err and "not a folder" in err
    code, err, _ = tfface_train(capsys, path / "run", data, steps=4)
    assert code == files.EXIT_OUTPUT and "notes.txt" in err
    assert path.read_text() == "keep me"


@pytest.mark.parametrize("name", ["summary.json", "embedder.keras"])
def test_an_output_that_is_a_symlink_or_a_folder_exits_3_before_training(run, data, tmp_path, name, capsys):
    target = tmp_path / "elsewhere.txt"
    target.write_text("not yours")
    os.remove(run / name)
    os.symlink(target, run / name)
    before = digest(str(run / "checkpoints"))
    code, err, _ = tfface_train(capsys, run, data, steps=12)
    assert code == files.EXIT_OUTPUT
    assert f"{run / name} is a symbolic link" in err
    assert target.read_text() == "not yours" and digest(str(run / "checkpoints")) == before
    os.remove(run / name)
    os.mkdir(run / name)
    code, err, _ = tfface_train(capsys, run, data, steps=12)
    assert code == files.EXIT_OUTPUT and "is in the way: expected a file" in err
    assert digest(str(run / "checkpoints")) == before


def test_the_workdir_outputs_are_strict_json_and_leave_no_temporaries(trained):
    summary = strict_json(os.path.join(trained, "summary.json"))
    assert summary["steps"] == 8 and summary["resumed_from"] == 0
    assert strict_json(os.path.join(trained, "recipe.json"))["name"] == "smoke"
    assert files.leftovers(trained) == [] and files.leftovers(os.path.join(trained, "checkpoints")) == []
    assert os.path.basename(tf.train.latest_checkpoint(os.path.join(trained, "checkpoints"))) == "ckpt-8"
