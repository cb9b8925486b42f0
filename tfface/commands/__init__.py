"""The ``tfface`` sub-commands: one module per command, each with ``add_arguments(parser)`` and
``run(args) -> int`` (the exit status).

This package is the only place that parses arguments, prints for a person or reads the
environment (``TF_CONFIG`` in ``tfface train``; the log-level defaults set by
:func:`prepare_environment`). The library modules it calls take arguments, return values and
raise errors. ``tfface.cli`` dispatches here; importing this package imports only the standard
library.
"""
import importlib.abc
import importlib.util
import logging
import os
import re
import sys
import tempfile
import warnings

# Modules whose Python warnings and log records a quiet command hides.
_NOISY_MODULES = r"(tensorflow|keras|tf_keras|absl|google\.protobuf|h5py)(\.|$)"
# What TensorFlow's C++ side writes to stderr while its shared libraries load, before its own
# log-level setting applies (absl's pre-initialisation messages, e.g. "Could not find cuda
# drivers" on a machine without a GPU): an absl/glog line "I0000 00:00:1700000000.123 123
# file.cc:31] ..." or absl's notice about such lines.
_LOAD_NOISE = re.compile(
    rb"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    rb"|[IWE]\d{4} [\d:. ]+\d+ [\w./-]+:\d+\] .*"
    rb"|\d{4}-\d\d-\d\d [\d:.]+: [IWE] [\w./-]+:\d+\] .*)$"
)


def prepare_environment(verbose=False):
    """Environment defaults of a command, set before anything imports TensorFlow.

    Quiet (the default): TensorFlow's C++ log lines below FATAL are not printed
    (``TF_CPP_MIN_LOG_LEVEL=3``, unless the caller set it), the lines its libraries print while
    they load are filtered out of stderr (:func:`quiet_tensorflow_import`), and Python warnings
    and log records below ERROR from TensorFlow, Keras and absl are hidden. ``verbose=True``
    (``tfface --verbose CMD``) changes none of TensorFlow's defaults, so everything reaches
    stderr. Either way Keras runs on TensorFlow."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    if verbose:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    warnings.filterwarnings("ignore", module=_NOISY_MODULES)
    for name in ("tensorflow", "absl", "keras", "h5py"):
        logging.getLogger(name).setLevel(logging.ERROR)
    quiet_tensorflow_import()


def quiet_tensorflow_import():
    """Arrange that the first ``import tensorflow`` of this process runs with file descriptor 2
    captured; what it wrote is passed on to stderr afterwards without TensorFlow's load-time log
    lines. Anything else it wrote (a traceback, a warning of another library) still appears."""
    if "tensorflow" in sys.modules or any(isinstance(f, _QuietFinder) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _QuietFinder())


class _QuietFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        # The module keeps its real loader (importlib.resources and friends read it).
        module.__loader__ = self._loader
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        with _filtered_stderr():
            self._loader.exec_module(module)
        # absl's Python handler is installed by the import and resets nothing we set later.
        for name in ("tensorflow", "absl"):
            logging.getLogger(name).setLevel(logging.ERROR)


class _filtered_stderr:
    """Redirect file descriptor 2 to a temporary file; on exit restore it and write back every
    line that is not TensorFlow's load-time logging."""

    def __enter__(self):
        sys.stderr.flush()
        self._saved = os.dup(2)
        self._file = tempfile.TemporaryFile()
        os.dup2(self._file.fileno(), 2)
        return self

    def __exit__(self, *exc):
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(self._saved, 2)
        os.close(self._saved)
        self._file.seek(0)
        kept = [line for line in self._file.read().splitlines(keepends=True)
                if not _LOAD_NOISE.match(line.rstrip(b"\r\n"))]
        self._file.close()
        data = b"".join(kept)
        while data:
            data = data[os.write(2, data):]
        return False


def parse_size_argument(text, option):
    """A crop-size argument ``N`` or ``WxH`` (``112``, ``160``, ``96x112``) -> ``N`` or
    ``(W, H)``; None stays None. A malformed value is a ``ValueError`` naming ``option``."""
    if text is None:
        return None
    t = str(text).lower().replace("\u00d7", "x")
    try:
        if "x" in t:
            w, h = t.split("x")
            return (int(w), int(h))
        return int(t)
    except ValueError:
        raise ValueError(f"{option} {text!r}: expected N or WxH (e.g. 112, 160, 96x112)") from None
