"""Readers of the verification formats people bring: LFW ``pairs.txt``, insightface ``.bin`` and
YouTube Faces ``splits.txt``.

Every reader validates what it reads and fails loudly: a pair whose image is missing is an error
that lists every missing file (facenet's ``lfw.py`` silently drops such pairs and reports accuracy
on fewer pairs), a header that disagrees with the number of lines is an error, and a ``.bin``
pickle that is anything but plain data is refused before anything in it can run.
"""
import io
import os
import pickle
import pickletools
import re

import numpy as np

from tfface.data.images import is_image_name

__all__ = ["read_pairs", "read_bin", "read_ytf_splits", "RestrictedUnpickler"]


# ---------------------------------------------------------------------------------------------
# LFW pairs.txt


def _parse_header(line, pairs_txt):
    fields = line.split()
    try:
        numbers = [int(f) for f in fields]
    except ValueError:
        numbers = None
    if numbers is None or len(numbers) not in (1, 2) or min(numbers) < 1:
        raise ValueError(
            f"{pairs_txt}: line 1 is {line.strip()!r}; expected the header 'FOLDS<TAB>PAIRS' "
            "(e.g. '10\\t300' for LFW's pairs.txt) or 'PAIRS' (pairsDevTrain.txt/pairsDevTest.txt)"
        )
    # pairsDevTrain.txt / pairsDevTest.txt carry only the per-kind count: one fold.
    return (1, numbers[0]) if len(numbers) == 1 else (numbers[0], numbers[1])


def _image_number(text, pairs_txt, lineno):
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(
            f"{pairs_txt}: line {lineno} has image number {text!r}; expected a positive integer "
            "(pairs.txt numbers images from 1)"
        )
    return n


def read_pairs(pairs_txt, root=None, ext="jpg", check_files=True, return_folds=False):
    """Read an LFW-style ``pairs.txt``.

    The first line is ``FOLDS<TAB>N`` (``10<TAB>300`` for LFW): FOLDS blocks of 2·N lines follow,
    each with N matched lines ``name<TAB>n1<TAB>n2`` and N mismatched lines
    ``name1<TAB>n1<TAB>name2<TAB>n2``. A one-number header ``N`` (LFW's ``pairsDevTrain.txt``) is
    one fold. Image ``n`` of ``name`` is ``root/name/name_%04d.ext``; ``root`` defaults to the
    folder holding ``pairs.txt`` (where ``tfface synth`` writes it). Whether a pair is matched is
    read from the form of its line.

    Returns ``(paths, issame)``: ``paths`` a list of 2·P strings, pair ``i`` being
    ``(paths[2i], paths[2i+1])``, and ``issame`` a bool array ``(P,)``. With ``return_folds=True``
    also an int array ``(P,)`` giving each pair's fold (0-based; folds are the contiguous blocks of
    the file, as in LFW's protocol).

    Raises ``ValueError`` for a malformed line or a header that disagrees with the number of pair
    lines, and ``FileNotFoundError`` listing every missing image when ``check_files`` is true.
    """
    pairs_txt = os.fspath(pairs_txt)
    if root is None:
        root = os.path.dirname(os.path.abspath(pairs_txt))
    ext = ext.lstrip(".")
    with open(pairs_txt, encoding="utf-8") as f:
        lines = f.read().splitlines()
    # Blank lines (a trailing newline, an empty last line) carry nothing.
    numbered = [(i + 1, line) for i, line in enumerate(lines) if line.strip()]
    if not numbered:
        raise ValueError(f"{pairs_txt}: empty file; expected a header line and pair lines")
    n_folds, per_kind = _parse_header(numbered[0][1], pairs_txt)
    body = numbered[1:]
    expected = n_folds * 2 * per_kind
    if len(body) != expected:
        raise ValueError(
            f"{pairs_txt}: the header {numbered[0][1].strip()!r} announces {n_folds} fold(s) of "
            f"{per_kind} matched + {per_kind} mismatched pairs = {expected} pair lines, but the "
            f"file has {len(body)}"
        )

    def image_path(name, number):
        return os.path.join(os.fspath(root), name, f"{name}_{number:04d}.{ext}")

    paths, issame = [], []
    for lineno, line in body:
        fields = line.split()
        if len(fields) == 3:
            name, n1, n2 = fields
            paths += [
                image_path(name, _image_number(n1, pairs_txt, lineno)),
                image_path(name, _image_number(n2, pairs_txt, lineno)),
            ]
            issame.append(True)
        elif len(fields) == 4:
            name1, n1, name2, n2 = fields
            paths += [
                image_path(name1, _image_number(n1, pairs_txt, lineno)),
                image_path(name2, _image_number(n2, pairs_txt, lineno)),
            ]
            issame.append(False)
        else:
            raise ValueError(
                f"{pairs_txt}: line {lineno} is {line.strip()!r}; expected 'name n1 n2' (matched) "
                "or 'name1 n1 name2 n2' (mismatched)"
            )
    if check_files:
        _require_files(paths, pairs_txt)
    issame = np.asarray(issame, dtype=bool)
    if return_folds:
        folds = np.arange(len(issame)) // (2 * per_kind)
        return paths, issame, folds
    return paths, issame


def _require_files(paths, source):
    missing = sorted({p for p in paths if not os.path.isfile(p)})
    if missing:
        listing = "\n  ".join(missing)
        raise FileNotFoundError(
            f"{source}: {len(missing)} image(s) referenced by the pairs do not exist (no pair is "
            f"dropped silently; fix the root/ext or the files):\n  {listing}"
        )


# ---------------------------------------------------------------------------------------------
# insightface .bin


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler for plain data only: it refuses to resolve any global (class, function,
    module attribute), so no pickle read through it can construct an object or call anything.
    numpy arrays need numpy globals and are refused too."""

    def find_class(self, module, name):
        raise ValueError(
            f"refusing to load the global {module}.{name}: this file may only contain plain data "
            "(lists/tuples of bytes and bools); a pickle that names a callable could run code"
        )

    def persistent_load(self, pid):
        raise ValueError(f"refusing the persistent id {pid!r}: only plain data is admitted")


# Opcodes that build plain values. Everything else (GLOBAL/STACK_GLOBAL/INST/OBJ/REDUCE/BUILD/
# NEWOBJ*, the EXT* extension registry, persistent ids, out-of-band buffers) can reach a callable
# or outside state and is refused before unpickling starts: find_class alone does not see EXT*
# codes that were cached earlier in the process.
_PLAIN_OPCODES = frozenset(
    """INT BININT BININT1 BININT2 LONG LONG1 LONG4 STRING BINSTRING SHORT_BINSTRING BINBYTES
    SHORT_BINBYTES BINBYTES8 BYTEARRAY8 NONE NEWTRUE NEWFALSE UNICODE SHORT_BINUNICODE BINUNICODE
    BINUNICODE8 FLOAT BINFLOAT EMPTY_LIST APPEND APPENDS LIST EMPTY_TUPLE TUPLE TUPLE1 TUPLE2
    TUPLE3 EMPTY_DICT DICT SETITEM SETITEMS EMPTY_SET ADDITEMS FROZENSET POP DUP MARK POP_MARK
    GET BINGET LONG_BINGET PUT BINPUT LONG_BINPUT MEMOIZE PROTO STOP FRAME""".split()
)


_MEMO_OPCODES = frozenset({"MEMOIZE", "PUT", "BINPUT", "LONG_BINPUT", "FRAME"})


def _check_opcodes(data, path):
    strings = []
    ops = pickletools.genops(io.BytesIO(data))
    while True:
        try:
            opcode, arg, pos = next(ops)
        except StopIteration:
            return
        except ValueError as err:
            raise ValueError(f"{path}: not a valid pickle ({err})") from None
        if opcode.name in _PLAIN_OPCODES:
            # Remember the strings just pushed, to name a STACK_GLOBAL that follows them.
            if isinstance(arg, str) and "UNICODE" in opcode.name:
                strings = (strings + [arg])[-2:]
            elif opcode.name not in _MEMO_OPCODES:
                strings = []
            continue
        if opcode.name == "GLOBAL":
            what = f"the global {arg.replace(' ', '.')}"
        elif opcode.name == "STACK_GLOBAL" and len(strings) == 2:
            what = f"the global {strings[0]}.{strings[1]}"
        else:
            what = f"the pickle opcode {opcode.name}"
        raise ValueError(
            f"{path}: refusing {what} at byte {pos}: an insightface .bin may only contain "
            "plain data (lists/tuples of bytes and bools); this pickle could run code"
        )


def _brief(value):
    """A short description of a value read from an untrusted file (a container's repr could be
    huge or nested deeper than Python's recursion limit)."""
    if isinstance(value, (bool, int, float, type(None))):
        return repr(value)
    if isinstance(value, (list, tuple, dict, set, frozenset, bytes, bytearray, str)):
        return f"a {type(value).__name__} of length {len(value)}"
    return f"a {type(value).__name__}"


def read_bin(path):
    """Read an insightface verification ``.bin`` file (``lfw.bin``, ``cfp_fp.bin``, ...).

    The file is a pickle of ``(bins, issame_list)``: ``bins`` 2·N encoded images (pair ``i`` is
    images ``2i`` and ``2i+1``) and ``issame_list`` N booleans. It is read as plain data only:
    any pickle that names a global (a class, a function, ``os.system``; numpy arrays too) is
    refused with ``ValueError`` before anything in it runs. Python 2 pickles (``str`` images) are
    read as bytes.

    Returns ``(images, issame)``: a list of 2·N ``bytes`` and a bool array ``(N,)``.
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        data = f.read()
    _check_opcodes(data, path)
    try:
        # encoding="bytes": insightface's original files are Python 2 pickles of str images.
        obj = RestrictedUnpickler(io.BytesIO(data), encoding="bytes").load()
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
    except (pickle.UnpicklingError, EOFError, IndexError, TypeError, RecursionError, MemoryError) as err:
        raise ValueError(f"{path}: not a valid pickle ({type(err).__name__}: {str(err)[:200]})") from None

    if not isinstance(obj, (tuple, list)) or len(obj) != 2:
        raise ValueError(
            f"{path}: expected a pickled pair (bins, issame_list), got {type(obj).__name__}"
            + (f" of length {len(obj)}" if isinstance(obj, (tuple, list)) else "")
        )
    bins, flags = obj
    if not isinstance(bins, (list, tuple)) or not isinstance(flags, (list, tuple)):
        raise ValueError(
            f"{path}: expected (list of encoded images, list of bools), got "
            f"({type(bins).__name__}, {type(flags).__name__})"
        )
    images = []
    for i, b in enumerate(bins):
        if not isinstance(b, (bytes, bytearray)):
            raise ValueError(f"{path}: image {i} is a {type(b).__name__}; expected encoded image bytes")
        images.append(bytes(b))
    issame = []
    for i, s in enumerate(flags):
        # bool is an int subclass; protocol-0/1 pickles may store flags as 0/1.
        if not isinstance(s, int) or s not in (0, 1):
            raise ValueError(f"{path}: issame[{i}] is {_brief(s)}; expected a bool")
        issame.append(bool(s))
    if len(images) != 2 * len(issame):
        raise ValueError(
            f"{path}: {len(images)} images for {len(issame)} pairs; expected 2 images per pair "
            f"({2 * len(issame)})"
        )
    return images, np.asarray(issame, dtype=bool)


# ---------------------------------------------------------------------------------------------
# YouTube Faces splits.txt

def _natural_key(name):
    # Frame files are numbered without zero padding (aligned_detect_0.99.jpg before ...0.100.jpg).
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def _list_frames(video_dir):
    return [
        os.path.join(video_dir, f)
        for f in sorted(os.listdir(video_dir), key=_natural_key)
        if is_image_name(f) and os.path.isfile(os.path.join(video_dir, f))
    ]


def read_ytf_splits(splits_txt, frames_root):
    """Read YouTube Faces' ``splits.txt`` (video-pair verification).

    The first line is a header; each following line is
    ``split, pair, first video, second video, is same`` (comma separated), videos named
    ``person/video_number`` and stored as folders of frames under ``frames_root``
    (``aligned_images_DB/Aaron_Eckhart/0/*.jpg``). Columns after the fifth are ignored.

    Returns ``(videos, issame, folds)``: ``videos`` a list of ``(frames_a, frames_b)`` (each a list
    of frame paths in natural order), ``issame`` a bool array ``(P,)`` and ``folds`` an int array
    ``(P,)`` with the 0-based split of each pair. A missing or empty video folder is an error
    listing every one.
    """
    splits_txt = os.fspath(splits_txt)
    frames_root = os.fspath(frames_root)
    with open(splits_txt, encoding="utf-8") as f:
        lines = f.read().splitlines()
    if not lines:
        raise ValueError(f"{splits_txt}: empty file; expected a header line and pair lines")
    rows = []
    for lineno, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = [c.strip() for c in line.split(",")]
        try:
            if len(fields) < 5:
                raise ValueError
            split, same = int(fields[0]), int(fields[4])
            int(fields[1])
            if split < 1 or same not in (0, 1) or not fields[2] or not fields[3]:
                raise ValueError
        except ValueError:
            raise ValueError(
                f"{splits_txt}: line {lineno} is {line.strip()!r}; expected "
                "'split, pair, first video, second video, is same' with split >= 1 and is same 0/1"
            ) from None
        rows.append((split - 1, fields[2], fields[3], bool(same)))
    if not rows:
        raise ValueError(f"{splits_txt}: no pair lines after the header")

    frames, problems = {}, []
    for video in sorted({v for _, a, b, _ in rows for v in (a, b)}):
        video_dir = os.path.join(frames_root, video)
        if not os.path.isdir(video_dir):
            problems.append(f"{video_dir} (missing)")
            continue
        listed = _list_frames(video_dir)
        if not listed:
            problems.append(f"{video_dir} (no frames)")
        frames[video] = listed
    if problems:
        listing = "\n  ".join(problems)
        raise FileNotFoundError(
            f"{splits_txt}: {len(problems)} video folder(s) are missing or hold no frames:\n  {listing}"
        )
    videos = [(frames[a], frames[b]) for _, a, b, _ in rows]
    issame = np.asarray([s for *_, s in rows], dtype=bool)
    folds = np.asarray([f for f, *_ in rows], dtype=np.int64)
    return videos, issame, folds
