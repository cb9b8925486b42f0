"""``tfface align SRC DST``: MTCNN detection + 5-point alignment of every image of a folder tree
(:func:`tfface.align.align_folder`; the rules, resuming and the report are described there).

Prints one summary line, the first files of each fallback/skip list, and where the report is.
Exit status: 0 done; 1 some files failed with an unexpected error (or killed their worker
twice); 2 bad arguments; 3 DST cannot be written (a file or symlink, permissions, full disk) or
was made with other settings (``--overwrite`` clears it); 4 another run is aligning into DST.
"""
import os
import sys

from tfface import files
from tfface.align.aligner import DEFAULT_DETECT_SIZE
from tfface.align.folder import REPORT_NAME, align_folder
from tfface.data.build import shown_name
from tfface.data.images import DEFAULT_MAX_PIXELS


def add_arguments(parser):
    parser.add_argument("src", metavar="SRC", help="folder of images (searched recursively)")
    parser.add_argument("dst", metavar="DST", help="output folder (same relative layout as SRC)")
    parser.add_argument(
        "--mode",
        choices=("arcface", "facenet"),
        default="arcface",
        help="arcface: 5-point similarity transform onto insightface's template; facenet: MTCNN "
        "box + margin, resized (the MML paper's crop) (default: arcface)",
    )
    parser.add_argument(
        "--size",
        default=None,
        help="output size: N for N×N or WxH (96x112 selects the 96×112 ArcFace template); "
        "default 112 (arcface) or 160 (facenet)",
    )
    parser.add_argument(
        "--margin",
        type=float,
        default=None,
        help="facenet mode: total margin in source pixels around the box (default 32, facenet's "
        "setting for 160×160 crops; facenet aligns training sets at --size 182 --margin 44)",
    )
    parser.add_argument(
        "--split",
        choices=("train", "test"),
        default="train",
        help="train: images without a face are skipped and listed; test: they fall back to "
        "--landmarks, else a centre crop, and are listed (default: train)",
    )
    parser.add_argument(
        "--landmarks",
        default=None,
        help="fallback landmarks: a JSON object {relative path: [x1, y1, ..., x5, y5]} or a text "
        "file of lines 'relative/path<TAB>x1 y1 ... x5 y5' (left eye, right eye, nose, left mouth, "
        "right mouth)",
    )
    parser.add_argument("--workers", type=int, default=1, help="parallel processes, each with its own MTCNN (default 1)")
    parser.add_argument("--ext", choices=("jpg", "png"), default="jpg", help="output format (default jpg)")
    parser.add_argument("--quality", type=int, default=95, help="JPEG quality (default 95)")
    parser.add_argument("--min-face-size", type=int, default=20, help="smallest face MTCNN looks for, in pixels (default 20)")
    parser.add_argument(
        "--detect-size",
        default=str(DEFAULT_DETECT_SIZE),
        help="MTCNN runs on a copy whose long side is at most this many pixels, the landmarks are "
        "mapped back and the crop is cut from the full-resolution image; --min-face-size counts "
        f"pixels of that copy; 'full' detects at full resolution (slow) (default {DEFAULT_DETECT_SIZE})",
    )
    parser.add_argument("--batch-size", type=int, default=8, help="images detected together by a worker (default 8)")
    parser.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS,
                        help="largest source image accepted, width*height as its header declares it, checked "
                        f"before decoding (default {DEFAULT_MAX_PIXELS})")
    parser.add_argument("--overwrite", action="store_true",
                        help="clear DST first when it holds crops made with other settings (or other files)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _parse_size(text):
    from tfface.commands import parse_size_argument

    return parse_size_argument(text, "--size")


def _parse_detect_size(text):
    if str(text).lower() in ("full", "none", "0"):
        return None
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"--detect-size {text!r}: expected a number of pixels or 'full'") from None


def summary_line(report):
    s = report["skipped"]
    parts = [
        f"seen {report['seen']}",
        f"aligned {report['aligned']} (detected {report['methods']['detected']}, "
        f"given landmarks {report['methods']['given_landmarks']}, centre crop {report['methods']['centre_crop']})",
        f"existing {report['existing']}",
        "skipped " + ", ".join(f"{k} {v}" for k, v in s.items()),
    ]
    if report["not_images"]:
        parts.append(f"not images {report['not_images']}")
    return "align: " + "; ".join(parts)


def run(args):
    try:
        size = _parse_size(args.size)
        report = align_folder(
            args.src,
            args.dst,
            mode=args.mode,
            size=size,
            margin=args.margin,
            split=args.split,
            landmarks=args.landmarks,
            workers=args.workers,
            ext=args.ext,
            quality=args.quality,
            min_face_size=args.min_face_size,
            detect_size=_parse_detect_size(args.detect_size),
            batch_size=args.batch_size,
            progress=not args.quiet,
            max_pixels=args.max_pixels,
            overwrite=args.overwrite,
        )
    except (files.TfFaceError, OSError) as err:
        if isinstance(err, FileNotFoundError) and not isinstance(err, files.TfFaceError):
            print(f"tfface align: {err}", file=sys.stderr)
            return files.EXIT_INPUT
        return files.report("align", err)
    except ValueError as err:
        print(f"tfface align: {err}", file=sys.stderr)
        return files.EXIT_INPUT
    print(summary_line(report))
    for name in ("no_face", "unreadable", "name_collision", "error", "given_landmarks", "centre_crop"):
        for entry in report["lists"][name][:10]:
            path = entry["path"] if isinstance(entry, dict) else entry
            detail = f": {entry['error']}" if isinstance(entry, dict) else ""
            print(f"  {name}: {shown_name(path)}{detail}")
        if len(report["lists"][name]) > 10:
            print(f"  {name}: ... {len(report['lists'][name]) - 10} more in the report")
    print(f"report: {os.path.join(args.dst, REPORT_NAME)}")
    return 1 if report["skipped"]["error"] else 0
