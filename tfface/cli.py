"""The ``tfface`` command line: dispatch to ``tfface.commands.<name>``.

Each sub-command is one module of :mod:`tfface.commands` with two functions,
``add_arguments(parser)`` and ``run(args) -> int``; argument parsing, printing and reading the
environment (log-level defaults, ``TF_CONFIG`` in ``tfface train``) all live there. This file only
dispatches, so ``tfface --help``, ``tfface --version`` and ``tfface COMMAND --help`` do not import
TensorFlow.

A command prints only its own output and errors: TensorFlow's C++ log lines, the lines its
libraries print while they load and Python warnings of TensorFlow/Keras are hidden
(:func:`tfface.commands.prepare_environment`). ``tfface --verbose COMMAND ...`` (or ``--verbose``
after the command) lets them all through.
"""
import argparse
import importlib
import sys

from tfface import __version__

# name -> (module implementing add_arguments/run, one-line help)
COMMANDS = {
    "synth": ("tfface.commands.synth", "write the embedded synthetic-identity data set"),
    "align": ("tfface.commands.align", "MTCNN detection + 5-point alignment of an image folder"),
    "build": ("tfface.commands.build", "image folder (one sub-folder per identity) or train.rec -> sharded TFRecords"),
    "train": ("tfface.commands.train", "train a recipe with model.fit under tf.distribute"),
    "eval": ("tfface.commands.eval", "verification / identification protocols"),
    "pack": ("tfface.commands.pack", "a pair set -> an insightface-compatible .bin"),
    "import": ("tfface.commands.import", "a third-party checkpoint (facenet .pb/checkpoint, facenet-pytorch .pt) -> .keras embedder"),
    "export": ("tfface.commands.export", "export a trained run to a SavedModel"),
    "recipe": ("tfface.commands.recipe", "list the bundled recipes, or show one fully resolved"),
    "embed": ("tfface.commands.embed", "detect, align and embed the faces of photos -> embeddings file"),
    "enrol": ("tfface.commands.enrol", "identity folder or list of photos -> face-search index"),
    "search": ("tfface.commands.search", "top-k enrolled identities of the faces in photos, with the decision"),
    "pairs": ("tfface.commands.pairs", "identity folder -> LFW-format pairs.txt and probe/gallery lists"),
    "demo": ("tfface.commands.demo", "synth -> build -> train -> eval -> export, in minutes on a CPU"),
}


GLOBAL_OPTIONS = ("-v", "--verbose")


def _top_parser():
    parser = argparse.ArgumentParser(
        prog="tfface",
        description="Face-recognition embeddings with Keras 3 / TensorFlow.",
        epilog="Run 'tfface COMMAND --help' for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"tfface {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help=VERBOSE_HELP)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


VERBOSE_HELP = ("let TensorFlow's and Keras' log lines and warnings through (by default a command "
                "prints only its own output and errors)")


def _wants_verbose(rest):
    """``--verbose`` among a command's own arguments (before any ``--``)."""
    own = rest[: rest.index("--")] if "--" in rest else rest
    return "--verbose" in own


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = False
    while argv and argv[0] in GLOBAL_OPTIONS:
        verbose = True
        argv.pop(0)
    if not argv or argv[0].startswith("-") or argv[0] not in COMMANDS:
        parser = _top_parser()
        if argv and not argv[0].startswith("-") and argv[0] not in COMMANDS:
            parser.error(f"unknown command {argv[0]!r}; expected one of: {', '.join(COMMANDS)}")
        args = parser.parse_args(argv)
        parser.print_help()
        return 0
    name, rest = argv[0], argv[1:]
    module_name, help_text = COMMANDS[name]
    from tfface.commands import prepare_environment

    # Before the command's module is imported: nothing may load TensorFlow ahead of the log settings.
    prepare_environment(verbose=verbose or _wants_verbose(rest))
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name and module_name.startswith(err.name):
            print(f"tfface {name}: this command is not available in this version", file=sys.stderr)
            return 2
        raise
    parser = argparse.ArgumentParser(prog=f"tfface {name}", description=help_text)
    module.add_arguments(parser)
    try:
        parser.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)
    except argparse.ArgumentError:
        pass  # the command has its own --verbose; it still unmutes TensorFlow (read above)
    args = parser.parse_args(rest)
    # Progress lines appear as they are printed, also through a pipe or into a log file.
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)
    from tfface import files

    try:
        return int(module.run(args) or 0)
    except KeyboardInterrupt:
        print(f"tfface {name}: interrupted", file=sys.stderr)
        return files.EXIT_INTERRUPTED
    except files.TfFaceError as err:
        # Expected failures raised past the command's own mapping: message + documented status.
        return files.report(name, err)
    except FileNotFoundError as err:
        print(f"tfface {name}: {err.filename or err}: no such file or folder", file=sys.stderr)
        return files.EXIT_INPUT
    except OSError as err:
        if err.errno in files.OUTPUT_ERRNOS:
            return files.report(name, err)
        raise


if __name__ == "__main__":
    sys.exit(main())
