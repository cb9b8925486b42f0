"""The package installs, imports without side effects, and the console script answers."""
import os
import subprocess
import sys

import tfface
from tfface import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(*args):
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.run(
        [sys.executable, "-m", "tfface.cli", *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_version_prints():
    out = _run("--version")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"tfface {tfface.__version__}"


def test_help_lists_every_command():
    out = _run("--help")
    assert out.returncode == 0, out.stderr
    for name in cli.COMMANDS:
        assert name in out.stdout


def test_unknown_command_is_an_error():
    out = _run("frobnicate")
    assert out.returncode != 0
    assert "frobnicate" in out.stderr


def test_import_has_no_side_effects():
    # Importing tfface must not import TensorFlow, configure devices or print anything.
    code = "import sys, tfface; print('tensorflow' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=ROOT)
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
    assert out.stderr == ""
