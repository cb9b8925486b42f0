"""Test session set-up: split the CPU into logical devices before TensorFlow initialises, so the
``MirroredStrategy`` tests can run without a GPU, and keep TensorFlow quiet."""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# The repository root first, so a checkout's tfface is tested even beside another install.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tfface.testing import configure_logical_cpus  # noqa: E402

N_LOGICAL_CPUS = configure_logical_cpus(4)


import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _op_determinism_stays_with_its_test():
    """A deterministic run enables TensorFlow's process-wide op determinism (``tfface.training.build``
    with ``deterministic``); it is switched back off after that test so later tests see the
    default (e.g. XLA under ``jit_compile="auto"``, which determinism forbids)."""
    from tensorflow.python.framework import config

    before = config.is_op_determinism_enabled()
    yield
    if config.is_op_determinism_enabled() and not before:
        config.disable_op_determinism()
