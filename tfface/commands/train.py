"""``tfface train RECIPE [--set key=value ...] --workdir DIR [--steps N] [--restart]``.

Reads ``TF_CONFIG`` (the only environment variable training looks at; the library never reads
it) and passes it to ``tfface.training.distribution.default_strategy``: several tasks ->
MultiWorkerMirroredStrategy, else MirroredStrategy over the GPUs, else the CPU.

Rerunning the same command resumes from the newest checkpoint that loads; a run never starts
again from step 0 over existing checkpoints unless ``--restart`` is given, which moves the
previous run's outputs into ``WORKDIR/previous-<UTC time>/`` (nothing is deleted).

Exit status (docs/reliability.md): 0 done; 1 non-finite loss (the last good checkpoint kept);
2 bad recipe, arguments, data, recipe.json, checkpoint or ``init_from`` file; 3 an output cannot
be written (unwritable work directory, full disk during a checkpoint save: the previous
checkpoints are kept; a file or link in the way); 4 another run holds the work directory;
130 interrupted.
"""
import argparse
import errno
import os
import sys


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value <= 0:
        raise argparse.ArgumentTypeError(f"expected an integer > 0, got {text!r}")
    return value


def add_arguments(parser):
    parser.add_argument("recipe", help="recipe name (tfface recipe list), or a .py/.json recipe file")
    parser.add_argument("--workdir", required=True,
                        help="run directory (checkpoints/, logs/, embedder.keras, summary.json); "
                        "running the same command again resumes from its newest checkpoint that loads")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a recipe value, dotted keys, JSON values "
                        "(--set data.batch_size=64 --set head.margin=0.4)")
    parser.add_argument("--steps", type=_positive_int, default=None,
                        help="train this many steps in total instead of the recipe's length")
    parser.add_argument("--restart", action="store_true",
                        help="start again from step 0: move the previous run's outputs into "
                        "WORKDIR/previous-<UTC time>/ first (nothing is deleted); also lets a "
                        "different recipe use the work directory")
    parser.add_argument("--quiet", action="store_true", help="print only the final summary")
    parser.add_argument("--collective-timeout", type=float, default=None,
                        help="seconds before a multi-worker collective gives up (default: none)")


def run(args):
    from tfface import files
    from tfface.recipe import RecipeError, load_recipe

    try:
        recipe = load_recipe(args.recipe, args.overrides)
    except RecipeError as err:
        print(f"tfface train: {err}", file=sys.stderr)
        return files.EXIT_INPUT
    tf_config = os.environ.get("TF_CONFIG")
    # A single process locks its work directory before TensorFlow loads, so a second run fails
    # at once; with TF_CONFIG the library locks (the chief the work directory, a worker its own).
    lock = None
    if not tf_config:
        lock = files.DirLock(args.workdir, "tfface train")
        try:
            if os.path.lexists(args.workdir) and not os.path.isdir(args.workdir):
                raise files.OutputError(errno.ENOTDIR, f"the work directory {args.workdir} is not a folder",
                                        args.workdir)
            lock.acquire()
        except files.TfFaceError as err:
            return files.report("train", err)
    try:
        return _run(args, recipe, tf_config, lock is None)
    finally:
        if lock is not None:
            lock.release()


def _run(args, recipe, tf_config, lock):
    from tfface import files
    from tfface.recipe import RecipeError
    from tfface.training.builder import DataError
    from tfface.training.callbacks import NonFiniteLossError
    from tfface.training.distribution import default_strategy
    from tfface.training.runner import train

    try:
        strategy = default_strategy(tf_config, timeout_seconds=args.collective_timeout)
    except ValueError as err:
        # A malformed TF_CONFIG: the message names what is wrong with it.
        print(f"tfface train: {err}", file=sys.stderr)
        return files.EXIT_INPUT
    try:
        summary = train(recipe, args.workdir, strategy=strategy, steps=args.steps,
                        progress=not args.quiet, restart=args.restart, lock=lock)
    except NonFiniteLossError as err:
        print(f"tfface train: {err}", file=sys.stderr)
        return files.EXIT_NONFINITE
    except files.TfFaceError as err:
        return files.report("train", err)
    except (RecipeError, DataError) as err:
        print(f"tfface train: {err}", file=sys.stderr)
        return files.EXIT_INPUT
    except FileNotFoundError as err:
        print(f"tfface train: {err}", file=sys.stderr)
        return files.EXIT_INPUT
    if args.quiet:
        print(f"done: step {summary['steps']}/{summary['total_steps']}, workdir {summary['workdir']}")
    return files.EXIT_OK
