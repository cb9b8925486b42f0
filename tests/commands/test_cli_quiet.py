"""A quiet, fast command line: ``--help`` of every command without TensorFlow; TensorFlow's
C++/absl log lines kept off stderr unless ``--verbose``; a line while the first training step
compiles."""
import json
import os
import re
import subprocess
import sys

import pytest

from tfface import cli

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# A TensorFlow/absl log line as either logger prints it, or absl's notice about early lines.
TF_LOG_LINE = re.compile(
    r"^([IWEF]\d{4} \d\d:\d\d:\d\d|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWEF] |WARNING: All log messages before absl"
    r"|WARNING:absl:|.*cudart_stub|.*absl::)"
)


def _env(**extra):
    # As a user's shell has it: no log-level variable (the test session sets one for itself).
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "TF_CPP_MIN_VLOG_LEVEL")}
    env.update(PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), **extra)
    return env


def _tfface(*args, cwd=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "tfface.cli", *args], capture_output=True, text=True,
                          env=_env(), cwd=cwd, timeout=timeout)


def _tf_lines(stderr):
    return [line for line in stderr.splitlines() if TF_LOG_LINE.match(line)]


def test_help_of_every_command_without_tensorflow():
    script = (
        "import contextlib, io, json, sys\n"
        "from tfface import cli\n"
        "seen = {}\n"
        "for argv in [['--help'], ['--verbose', '--help']] + [[c, '--help'] for c in cli.COMMANDS]"
        " + [['--verbose', c, '--help'] for c in cli.COMMANDS]:\n"
        "    out = io.StringIO()\n"
        "    with contextlib.redirect_stdout(out):\n"
        "        try:\n"
        "            code = cli.main(argv)\n"
        "        except SystemExit as e:\n"
        "            code = e.code\n"
        "    seen[' '.join(argv)] = [code, out.getvalue(), 'tensorflow' in sys.modules]\n"
        "print(json.dumps(seen))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=_env(),
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout)
    assert len(seen) == 2 + 2 * len(cli.COMMANDS)
    for argv, (code, text, tensorflow_loaded) in seen.items():
        assert code in (0, None), argv
        assert text.startswith("usage: tfface"), argv
        assert not tensorflow_loaded, f"'tfface {argv}' imported TensorFlow"
        assert "--verbose" in text, f"'tfface {argv}' does not offer --verbose"
    assert proc.stderr == ""


def _write_with_filter(lines):
    """Run the import filter in a fresh interpreter around writes to file descriptor 2."""
    script = (
        "import os, sys\n"
        "from tfface.commands import _filtered_stderr\n"
        "os.write(2, b'before\\n')\n"
        "with _filtered_stderr():\n"
        f"    os.write(2, {''.join(lines).encode()!r})\n"
        "    print('python-level line', file=sys.stderr)\n"
        "os.write(2, b'after\\n')\n"
    )
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=_env(),
                          timeout=60)


def test_load_time_filter_drops_only_tensorflow_log_lines():
    noise = [
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n",
        "I0000 00:00:1796055676.856518     589 cudart_stub.cc:31] Could not find cuda drivers on your "
        "machine, GPU will not be used.\n",
        "E0000 00:00:1796055691.146242     936 cuda_platform.cc:52] failed call to cuInit: UNKNOWN ERROR (303)\n",
        "2023-08-25 11:11:47.521702: I tensorflow/tsl/cuda/cudart_stub.cc:28] Could not find cuda drivers\n",
    ]
    kept = ["ImportError: libfoo.so: cannot open shared object file\n", "I0000 is not a log line\n"]
    proc = _write_with_filter([noise[0], kept[0], noise[1], noise[2], kept[1], noise[3]])
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "before\n" + "".join(kept) + "python-level line\n" + "after\n"


def _tiny_folder(root):
    from tfface.data import generate_synthetic

    generate_synthetic(str(root), num_identities=3, num_test_identities=2, image_size=32,
                       min_images=2, max_images=2, folds=0)
    return str(root / "train")


@pytest.mark.slow
def test_build_is_quiet_and_verbose_lets_tensorflow_through(tmp_path):
    train = _tiny_folder(tmp_path / "data")
    quiet = _tfface("build", train, str(tmp_path / "quiet"))
    assert quiet.returncode == 0, quiet.stderr
    assert _tf_lines(quiet.stderr) == [], quiet.stderr
    assert "tfface build: seen 6, written 6" in quiet.stdout

    loud = _tfface("--verbose", "build", train, str(tmp_path / "loud"))
    assert loud.returncode == 0, loud.stderr
    # TensorFlow's own defaults apply: at least its start-up INFO lines (no CUDA driver / devices).
    assert _tf_lines(loud.stderr), loud.stderr


@pytest.mark.slow
def test_training_is_quiet_and_announces_the_compilation(tmp_path):
    synthetic = {"num_identities": 6, "num_test_identities": 2, "image_size": 32, "min_images": 3,
                 "max_images": 4, "folds": 0}
    proc = _tfface("train", "smoke", "--workdir", str(tmp_path / "run"),
                   f"--set=data.synthetic={json.dumps(synthetic)}", "--set=data.image_size=[32,32]",
                   "--set=data.batch_size=8", "--set=steps_per_epoch=2", "--set=epochs=1")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert _tf_lines(proc.stderr) == [], proc.stderr
    assert proc.stderr.strip() == "", proc.stderr
    lines = proc.stdout.splitlines()
    compiling = [i for i, line in enumerate(lines) if line.startswith("compiling the training step")]
    compiled = [i for i, line in enumerate(lines) if re.fullmatch(r"compiled in \d+\.\ds", line)]
    epoch = [i for i, line in enumerate(lines) if line.startswith("epoch 1/1")]
    assert len(compiling) == len(compiled) == len(epoch) == 1, proc.stdout
    assert compiling[0] < compiled[0] < epoch[0], proc.stdout
