"""The ``tfface`` sub-commands: one module per command, each with ``add_arguments(parser)`` and
``run(args) -> int`` (the exit status).

This package is the only place that parses arguments, prints for a person or reads the
environment (``TF_CONFIG`` in ``tfface train``; the log-level defaults set by
:func:`prepare_environment`). The library modules it calls take arguments, return values and
raise errors. ``tfface.cli`` dispatches here; importing this package imports nothing else.
"""
import os


def prepare_environment():
    """Environment defaults of a command: keep TensorFlow's C++ start-up chatter out of the
    command's output unless the user asked for it, and run Keras on TensorFlow."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
