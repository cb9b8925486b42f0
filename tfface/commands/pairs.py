"""``tfface pairs DIR``: evaluation lists from an identity folder (:mod:`tfface.search.pairs`).

``--pairs FILE`` writes an LFW-format ``pairs.txt`` (``--folds`` identity-disjoint folds of
``--per-fold`` matched + mismatched pairs, seeded); ``--split FOLDER`` writes disjoint
``gallery.txt`` / ``probes.txt`` lists for ``tfface enrol`` / ``tfface search``. Each file is
written atomically. Exit status: 0 done, 2 bad arguments or a folder too small for the request,
3 output not writable.
"""
from tfface.files import InputError


def add_arguments(parser):
    parser.add_argument("dir", metavar="DIR", help="identity folder (one sub-folder of photos per identity)")
    parser.add_argument("--pairs", default=None, help="write an LFW-format pairs.txt to this file")
    parser.add_argument("--folds", type=int, default=10, help="folds (default 10, as LFW's View 2)")
    parser.add_argument("--per-fold", type=int, default=None,
                        help="matched (and as many mismatched) pairs per fold (default 300, or the most every fold holds)")
    parser.add_argument("--split", default=None, metavar="FOLDER",
                        help="write gallery.txt and probes.txt (disjoint) into FOLDER")
    parser.add_argument("--gallery-per-identity", type=int, default=1, help="gallery photos per enrolled identity (default 1)")
    parser.add_argument("--unknown-fraction", type=float, default=0.1,
                        help="fraction of identities left out of the gallery, probes only (default 0.1)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")


def run(args):
    from tfface.search import pairs as lists

    if not args.pairs and not args.split:
        raise InputError("nothing to do: pass --pairs FILE and/or --split FOLDER")
    names, images, numbers = lists.identity_images(args.dir)
    if not names:
        raise InputError(f"{args.dir} holds no photos in identity sub-folders")
    if args.pairs:
        pairs, per_fold = lists.make_pairs(names, [len(i) for i in images], numbers, folds=args.folds,
                                           per_fold=args.per_fold, seed=args.seed)
        lists.write_pairs(args.pairs, pairs, per_fold)
        print(f"pairs: wrote {args.pairs}: {args.folds} identity-disjoint folds x {per_fold} matched + "
              f"{per_fold} mismatched pairs from {len(names)} identities (seed {args.seed})")
    if args.split:
        gallery, probes = lists.split_probe_gallery(names, images, args.gallery_per_identity,
                                                    args.unknown_fraction, seed=args.seed)
        g, p = lists.write_split(args.split, args.dir, gallery, probes)
        unknown = sum(1 for *_, known in probes if not known)
        print(f"pairs: wrote {g} ({len(gallery)} photos of {len({n for _, n in gallery})} identities) and "
              f"{p} ({len(probes)} probes, {unknown} of identities not enrolled)")
    return 0
