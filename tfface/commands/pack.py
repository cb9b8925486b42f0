"""``tfface pack OUT.bin``: a pair set -> an insightface-compatible verification ``.bin``.

    tfface pack lfw.bin --pairs pairs.txt --root lfw-112 [--ext jpg] [--size 112]
    tfface pack calfw.bin --protocol calfw --data DIR [--set-option calfw.key=value] [--size 112]

The ``.bin`` is a pickle of exactly ``(list of bytes, list of bool)``
(:func:`tfface.data.binwriter.write_bin`): readable by ``tfface.data.read_bin``, by insightface's
``load_bin`` and by a plain ``pickle.load``. Images are stored as their files' bytes, or decoded,
resized and re-encoded as JPEG with ``--size``. ``--protocol`` takes any registered protocol that
lists its pairs (a ``pairs()`` method: ``lfw``, the ``.bin`` sets, the pair-list benchmarks), so
an aligned set can be packed once and evaluated in seconds. Exit status: 0 written, 2 bad
options or data.
"""
import json
import os
import sys


def add_arguments(parser):
    parser.add_argument("out", metavar="OUT", help="the .bin file to write")
    parser.add_argument("--pairs", help="LFW-style pairs.txt")
    parser.add_argument("--root", help="image root of --pairs (default: the folder of pairs.txt)")
    parser.add_argument("--ext", default="jpg", help="image extension for --pairs (default jpg)")
    parser.add_argument("--protocol", metavar="NAME", help="a registered pair protocol")
    parser.add_argument("--data", metavar="DIR", help="the --protocol's folder as distributed")
    parser.add_argument("--set-option", action="append", default=[], metavar="NAME.KEY=VALUE",
                        help="an option of the --protocol (VALUE read as JSON)")
    parser.add_argument("--size", type=int, default=None,
                        help="re-encode every image as a JPEG of this square size (default: keep "
                        "the files' bytes)")
    parser.add_argument("--quality", type=int, default=95, help="JPEG quality with --size")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing OUT")


def run(args):
    if bool(args.pairs) == bool(args.protocol):
        print("tfface pack: give either --pairs pairs.txt or --protocol NAME --data DIR",
              file=sys.stderr)
        return 2
    if args.protocol and not args.data:
        print("tfface pack: --protocol needs --data", file=sys.stderr)
        return 2
    from tfface.files import EXIT_OUTPUT, DirLock

    if os.path.islink(args.out) or os.path.isdir(args.out):
        print(f"tfface pack: {args.out} is a {'symbolic link' if os.path.islink(args.out) else 'folder'}; "
              "give a file path", file=sys.stderr)
        return EXIT_OUTPUT
    if os.path.exists(args.out) and not args.overwrite:
        print(f"tfface pack: {args.out} exists (use --overwrite)", file=sys.stderr)
        return EXIT_OUTPUT
    try:
        images, issame = _pairs(args)
        from tfface.data.binwriter import pack_pairs

        # Written to a temporary file renamed onto OUT: a failure keeps a previous OUT.
        with DirLock.beside(args.out, "tfface pack"):
            pack_pairs(images, issame, args.out, size=args.size, quality=args.quality)
    except (ValueError, FileNotFoundError, NotADirectoryError) as err:
        print(f"tfface pack: {err}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}: {len(issame)} pairs ({int(sum(issame))} matched), "
          f"{len(images)} images")
    return 0


def _pairs(args):
    if args.pairs:
        from tfface.data.readers import read_pairs

        return read_pairs(args.pairs, args.root, ext=args.ext)
    from tfface import registry

    options = {}
    for item in args.set_option:
        target, sep, value = item.partition("=")
        name, dot, key = target.partition(".")
        if not sep or not dot or name != args.protocol:
            raise ValueError(f"--set-option {item!r}: expected {args.protocol}.KEY=VALUE")
        try:
            options[key] = json.loads(value)
        except ValueError:
            options[key] = value
    protocol = registry.build("protocol", registry.Component(args.protocol, options),
                              data=args.data)
    if not callable(getattr(protocol, "pairs", None)):
        raise ValueError(f"protocol {args.protocol!r} does not list its pairs (no pairs() "
                         "method); only pair-verification sets can be packed")
    return protocol.pairs()
