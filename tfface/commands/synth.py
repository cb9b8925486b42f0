"""``tfface synth OUT``: write the embedded synthetic-identity data set
(:func:`tfface.data.generate_synthetic`).

The data set is written into a hidden folder beside OUT and moved into place when complete
(:func:`tfface.files.staged_dir`), under a lock beside OUT: an interrupted or failed run leaves
OUT as it was, and ``--overwrite`` replaces OUT as a whole (no old identity is left beside the
new ones). ``OUT/info.json`` records the settings. ``--overwrite`` only replaces a folder that
``tfface synth`` made (one with its ``info.json``).

Exit status: 0 written; 2 bad settings; 3 OUT cannot be written (a file or symlink, a non-empty
folder without ``--overwrite``, a folder synth did not make, permissions, full disk); 4 another
run is writing OUT.
"""
import errno
import os
import sys

from tfface import files
from tfface.data.build import check_output_folder, remove_stale_stages
from tfface.data.synthetic import generate_synthetic


def add_arguments(parser):
    parser.add_argument("out", metavar="OUT", help="output directory (created; must be empty)")
    parser.add_argument("--identities", type=int, default=200, help="training identities (default 200)")
    parser.add_argument("--test-identities", type=int, default=100, help="held-out identities (default 100)")
    parser.add_argument("--size", type=int, default=112, choices=(112, 160), help="image size (default 112)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--min-images", type=int, default=4, help="fewest images of a training identity")
    parser.add_argument("--max-images", type=int, default=60, help="most images of a training identity")
    parser.add_argument("--tail-exponent", type=float, default=None,
                        help="power-law exponent over rank (default: spans min..max)")
    parser.add_argument("--test-images", type=int, default=10, help="images per held-out identity")
    parser.add_argument("--folds", type=int, default=10, help="pairs.txt folds (default 10)")
    parser.add_argument("--pairs-per-fold", type=int, default=300,
                        help="matched (and as many mismatched) pairs per fold (default 300)")
    parser.add_argument("--workers", type=int, default=0, help="processes (default: one per CPU)")
    parser.add_argument("--overwrite", action="store_true", help="allow a non-empty OUT")


def _check_out(out, overwrite):
    check_output_folder(out, "OUT")
    if not os.path.isdir(out) or not os.listdir(out):
        return
    if not overwrite:
        raise files.OutputError(errno.EEXIST, f"OUT {out} is not empty (pass --overwrite to replace it)", out)
    info = os.path.join(out, "info.json")
    record = files.read_json(info, "synth record") if os.path.isfile(info) else None
    if not (isinstance(record, dict) and record.get("generator") == "tfface.data.synthetic"):
        raise files.OutputError(errno.EEXIST, f"OUT {out} was not made by tfface synth (no info.json of it); "
                                "--overwrite would delete it as a whole: give another folder", out)


def run(args):
    try:
        _check_out(args.out, args.overwrite)
        with files.DirLock.beside(args.out, "tfface synth"):
            remove_stale_stages(args.out)
            with files.staged_dir(args.out, args.overwrite) as stage:
                info = _generate(args, stage)
    except (files.TfFaceError, OSError) as err:
        return files.report("synth", err)
    except ValueError as err:
        print(f"tfface synth: {err}", file=sys.stderr)
        return files.EXIT_INPUT
    tr, te = info["train"], info["test"]
    ipi = tr["images_per_identity"]
    print(
        f"tfface synth: {tr['images']} training images of {tr['identities']} identities "
        f"({ipi['min']}-{ipi['max']} per identity, mean {ipi['mean']:.1f}), {te['images']} held-out "
        f"images of {te['identities']} identities, {info['image_size']}x{info['image_size']}, "
        f"seed {info['seed']}, in {info['elapsed_s']:.1f}s -> {args.out}"
    )
    if te["pairs"]:
        print(f"  pairs: {te['pairs']['folds']} folds x {te['pairs']['pairs_per_fold']} matched + mismatched "
              f"in {os.path.join(args.out, 'test', 'pairs.txt')}")
    return 0


def _generate(args, out):
    return generate_synthetic(
        out,
        num_identities=args.identities,
        num_test_identities=args.test_identities,
        image_size=args.size,
        seed=args.seed,
        min_images=args.min_images,
        max_images=args.max_images,
        tail_exponent=args.tail_exponent,
        test_images_per_identity=args.test_images,
        folds=args.folds,
        pairs_per_fold=args.pairs_per_fold,
        workers=args.workers,
    )
