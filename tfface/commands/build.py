"""``tfface build SRC OUT``: image folder (one sub-folder per identity), or an insightface
RecordIO set (``train.rec`` with ``train.idx`` and ``property`` beside it, or their folder) ->
sharded TFRecords.

Prints a one-line summary (and the skipped files' reasons); ``OUT/stats.json`` holds the figures.
The build is staged beside OUT and moved into place when complete, so a failed or interrupted
build (``--overwrite`` included) leaves the previous one as it was.

Exit status: 0 built; 2 bad arguments or source (no identity folders, no good image); 3 OUT
cannot be written (a file or symlink in the way, a non-build folder, permissions, full disk, or a
build already there without ``--overwrite``); 4 another build of OUT is running.
"""
import os
import sys

from tfface import files
from tfface.data.build import build_tfrecords
from tfface.data.images import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS


def add_arguments(parser):
    parser.add_argument("src", metavar="SRC",
                        help="image folder (one sub-folder per identity), or insightface's train.rec (or its folder)")
    parser.add_argument("out", metavar="OUT", help="output directory for shards, labels.json, stats.json")
    parser.add_argument("--shards", type=int, default=None, help="number of shards (default: ~1 per 1,000 images)")
    parser.add_argument("--workers", type=int, default=None, help="threads (default: one per CPU)")
    parser.add_argument("--min-images", type=int, default=0, help="drop identities with fewer valid images (image folders only)")
    parser.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS,
                        help=f"largest header-declared width*height accepted (default {DEFAULT_MAX_PIXELS})")
    parser.add_argument("--max-bytes", type=int, default=DEFAULT_MAX_BYTES, help="largest file accepted, bytes")
    parser.add_argument("--prefix", default="train", help="shard name prefix (default train)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the spread of records over shards")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing build in OUT")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args):
    try:
        stats = build_tfrecords(
            args.src, args.out, shards=args.shards, workers=args.workers, min_images=args.min_images,
            max_pixels=args.max_pixels, max_bytes=args.max_bytes, prefix=args.prefix, seed=args.seed,
            overwrite=args.overwrite, progress=not args.no_progress,
        )
    except (files.TfFaceError, OSError) as err:
        return files.report("build", err)
    except ValueError as err:
        print(f"tfface build: {err}", file=sys.stderr)
        return files.EXIT_INPUT
    ipi = stats["images_per_identity"]
    print(
        f"tfface build: seen {stats['seen']}, written {stats['written']} images of {stats['identities']} "
        f"identities ({ipi['min']}-{ipi['max']} per identity, mean {ipi['mean']:.1f}) into "
        f"{len(stats['shards'])} shards in {stats['elapsed_s']:.1f}s -> {args.out}"
    )
    skipped = sum(stats["skipped"].values())
    if skipped:
        reasons = ", ".join(f"{k} {v}" for k, v in stats["skipped"].items())
        print(f"  skipped {skipped}: {reasons} (listed in {os.path.join(args.out, 'stats.json')})")
    if stats["dropped_identities"]:
        print(f"  dropped {len(stats['dropped_identities'])} identities below --min-images {stats['min_images']}")
    return 0
