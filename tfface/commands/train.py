"""``tfface train RECIPE [--set key=value ...] --workdir DIR [--steps N]``.

Reads ``TF_CONFIG`` (the only environment variable training looks at; the library never reads
it) and passes it to ``tfface.training.distribution.default_strategy``: several tasks ->
MultiWorkerMirroredStrategy, else MirroredStrategy over the GPUs, else the CPU. Exit status: 0 done, 1 non-finite loss, 2 bad recipe or data.
"""
import os
import sys


def add_arguments(parser):
    parser.add_argument("recipe", help="recipe name (tfface recipe list), or a .py/.json recipe file")
    parser.add_argument("--workdir", required=True,
                        help="run directory (checkpoints/, logs/, embedder.keras, summary.json); "
                        "running the same command again resumes from its last checkpoint")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a recipe value, dotted keys, JSON values "
                        "(--set data.batch_size=64 --set head.margin=0.4)")
    parser.add_argument("--steps", type=int, default=None,
                        help="train this many steps in total instead of the recipe's length")
    parser.add_argument("--quiet", action="store_true", help="print only the final summary")
    parser.add_argument("--collective-timeout", type=float, default=None,
                        help="seconds before a multi-worker collective gives up (default: none)")


def run(args):
    from tfface.recipe import RecipeError, load_recipe
    from tfface.training.builder import DataError
    from tfface.training.callbacks import NonFiniteLossError
    from tfface.training.distribution import default_strategy
    from tfface.training.runner import train

    try:
        recipe = load_recipe(args.recipe, args.overrides)
    except RecipeError as err:
        print(f"tfface train: {err}", file=sys.stderr)
        return 2
    tf_config = os.environ.get("TF_CONFIG")
    try:
        strategy = default_strategy(tf_config, timeout_seconds=args.collective_timeout)
    except ValueError as err:
        # A malformed TF_CONFIG: the message names what is wrong with it.
        print(f"tfface train: {err}", file=sys.stderr)
        return 2
    try:
        summary = train(recipe, args.workdir, strategy=strategy, steps=args.steps,
                        progress=not args.quiet)
    except NonFiniteLossError as err:
        print(f"tfface train: {err}", file=sys.stderr)
        return 1
    except (RecipeError, DataError, FileNotFoundError) as err:
        print(f"tfface train: {err}", file=sys.stderr)
        return 2
    if args.quiet:
        print(f"done: step {summary['steps']}/{summary['total_steps']}, workdir {summary['workdir']}")
    return 0
