"""Readers of the pair-list verification benchmarks as their authors publish them: CFP
(frontal-profile), CALFW / CPLFW, SLLFW and RFW.

Each reader is a pure function from the published files to ``(paths, issame, folds)``:
``paths`` holds 2·P image paths (pair ``i`` is ``paths[2i]``, ``paths[2i+1]``), ``issame`` a
bool array ``(P,)`` and ``folds`` an int array ``(P,)`` with each pair's 0-based fold, as the
benchmark defines its ten folds. Nothing is embedded or evaluated here
(:mod:`tfface.eval.protocols` does that); every reader validates what it reads, names the file
and line of a malformed entry, and lists every missing image instead of dropping a pair.

Layouts (details in each function):

* CFP: ``Protocol/Pair_list_F.txt``, ``Protocol/Pair_list_P.txt`` (``index path`` lines, paths
  relative to ``Protocol/``), ``Protocol/Split/{FP,FF}/01..10/{same,diff}.txt`` (``i,j`` index
  lines), ``Data/Images/<id>/{frontal,profile}/NN.jpg``. Folds = the 10 published splits.
* CALFW / CPLFW: ``pairs_CALFW.txt`` / ``pairs_CPLFW.txt``, two consecutive ``image label``
  lines per pair (label 0: different people; non-zero: the same person; CALFW writes the fold
  number 1..10 there). The 3,000 positive pairs come first, then the 3,000 negative ones; fold k
  is the k-th block of 300 positives plus the k-th block of 300 negatives.
* SLLFW: ``pair_SLLFW.txt``, one LFW image ``name/name_NNNN.jpg`` per line, two consecutive
  lines per pair; same person when both folders are equal; 10 folds of 300 + 300 pairs in file
  order (LFW's layout, reusing LFW's images).
* RFW: ``test/txts/<Race>/<Race>_pairs.txt`` (no header, tab separated: ``id n1 n2`` matched,
  ``id1 n1 id2 n2`` mismatched) and ``test/data/<Race>/<id>/<id>_NNNN.jpg``; 10 contiguous folds
  in file order.
"""
import os

import numpy as np

__all__ = ["read_cfp", "read_two_line_pairs", "read_sllfw", "read_rfw", "block_folds",
           "positive_negative_folds", "CFP_PROTOCOLS", "RFW_RACES"]

CFP_PROTOCOLS = ("FP", "FF")
RFW_RACES = ("African", "Asian", "Caucasian", "Indian")


def _read_lines(path):
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} does not exist")
    with open(path, encoding="utf-8", errors="replace") as f:
        return [(i + 1, line.strip()) for i, line in enumerate(f.read().splitlines())
                if line.strip()]


def _require_files(paths, source):
    missing = sorted({p for p in paths if not os.path.isfile(p)})
    if missing:
        shown = "\n  ".join(missing[:50])
        more = f"\n  ... and {len(missing) - 50} more" if len(missing) > 50 else ""
        raise FileNotFoundError(
            f"{source}: {len(missing)} image(s) referenced by the pairs do not exist (no pair is "
            f"dropped silently; fix the image root/extension or the files):\n  {shown}{more}")


def block_folds(n, folds):
    """Fold id of each of ``n`` pairs split into ``folds`` contiguous blocks (``np.array_split``
    sizes: the first ``n % folds`` blocks hold one pair more; LFW's and sklearn's ``KFold``)."""
    if not isinstance(folds, (int, np.integer)) or folds < 2 or folds > n:
        raise ValueError(f"folds must be an integer in [2, number of pairs={n}], got {folds!r}")
    sizes = np.full(folds, n // folds)
    sizes[: n % folds] += 1
    return np.repeat(np.arange(folds), sizes)


def positive_negative_folds(issame, folds):
    """Fold ids when the positives and the negatives are each split into ``folds`` contiguous
    blocks in file order, fold k = the k-th block of each (CALFW/CPLFW: positives first, then
    negatives). On a list already interleaved fold by fold (300 positives, 300 negatives, ...)
    this gives the same folds as contiguous blocks."""
    issame = np.asarray(issame, dtype=bool)
    out = np.empty(issame.shape[0], dtype=np.int64)
    for value in (True, False):
        idx = np.flatnonzero(issame == value)
        out[idx] = block_folds(idx.shape[0], folds)
    return out


# ---------------------------------------------------------------------------------------------
# CFP


def _read_cfp_list(path):
    entries = {}
    for lineno, line in _read_lines(path):
        fields = line.split()
        try:
            if len(fields) != 2:
                raise ValueError
            index = int(fields[0])
        except ValueError:
            raise ValueError(f"{path}: line {lineno} is {line!r}; expected 'INDEX PATH' "
                             "(e.g. '1 ../Data/Images/001/frontal/01.jpg')") from None
        if index in entries:
            raise ValueError(f"{path}: line {lineno} repeats the index {index}")
        entries[index] = fields[1]
    if not entries:
        raise ValueError(f"{path}: no 'INDEX PATH' lines")
    return entries


def _read_cfp_split(path, first, second, first_name, second_name):
    pairs = []
    for lineno, line in _read_lines(path):
        fields = [f.strip() for f in line.split(",")]
        try:
            if len(fields) != 2:
                raise ValueError
            a, b = int(fields[0]), int(fields[1])
        except ValueError:
            raise ValueError(f"{path}: line {lineno} is {line!r}; expected 'I,J' (two image "
                             "indices separated by a comma)") from None
        for index, table, name in ((a, first, first_name), (b, second, second_name)):
            if index not in table:
                raise ValueError(f"{path}: line {lineno} refers to image {index}, which "
                                 f"{name} does not list")
        pairs.append((first[a], second[b]))
    return pairs


def read_cfp(root, protocol="FP", images=None, check_files=True):
    """Read CFP's frontal-profile (``"FP"``) or frontal-frontal (``"FF"``) protocol.

    ``root`` holds ``Protocol/`` and ``Data/``. ``Protocol/Pair_list_F.txt`` and
    ``Pair_list_P.txt`` map image indices to paths relative to ``Protocol/``
    (``../Data/Images/001/frontal/01.jpg``); ``Protocol/Split/<protocol>/<NN>/same.txt`` and
    ``diff.txt`` list the pairs of split NN as ``i,j``: for FP ``i`` indexes the frontal list and
    ``j`` the profile list, for FF both index the frontal list. The splits are the sub-folders
    of ``Split/<protocol>`` in numeric order (``01`` .. ``10``); within a split the same pairs
    come first.

    ``images``: another image root standing for ``Data/Images`` (e.g. the output of
    ``tfface align root/Data/Images DST --split test``); the paths keep their part below
    ``Data/Images``.

    Returns ``(paths, issame, folds)`` (see the module docstring); ``folds`` is the split.
    """
    root = os.fspath(root)
    protocol = str(protocol).upper()
    if protocol not in CFP_PROTOCOLS:
        raise ValueError(f"CFP protocol must be one of {CFP_PROTOCOLS}, got {protocol!r}")
    proto_dir = os.path.join(root, "Protocol")
    frontal_txt = os.path.join(proto_dir, "Pair_list_F.txt")
    profile_txt = os.path.join(proto_dir, "Pair_list_P.txt")
    split_dir = os.path.join(proto_dir, "Split", protocol)
    for needed in (frontal_txt, profile_txt, split_dir):
        if not os.path.exists(needed):
            raise FileNotFoundError(
                f"{needed} does not exist; expected CFP's layout under {root}: "
                "Protocol/Pair_list_F.txt, Protocol/Pair_list_P.txt, "
                f"Protocol/Split/{protocol}/01..10/{{same,diff}}.txt, Data/Images/")
    frontal = _read_cfp_list(frontal_txt)
    second = frontal if protocol == "FF" else _read_cfp_list(profile_txt)
    second_name = os.path.basename(frontal_txt if protocol == "FF" else profile_txt)
    splits = sorted((d for d in os.listdir(split_dir)
                     if d.isdigit() and os.path.isdir(os.path.join(split_dir, d))), key=int)
    if len(splits) < 2:
        raise ValueError(f"{split_dir}: expected the numbered split folders 01..10, found "
                         f"{splits or 'none'}")
    rel_pairs, issame, folds = [], [], []
    for f, split in enumerate(splits):
        for name, same in (("same.txt", True), ("diff.txt", False)):
            pairs = _read_cfp_split(os.path.join(split_dir, split, name), frontal, second,
                                    "Pair_list_F.txt", second_name)
            rel_pairs += pairs
            issame += [same] * len(pairs)
            folds += [f] * len(pairs)
    images_dir = os.path.normpath(os.path.join(root, "Data", "Images"))

    def resolve(rel):
        path = os.path.normpath(os.path.join(proto_dir, rel))
        if images is None:
            return path
        below = os.path.relpath(path, images_dir)
        if below.startswith(os.pardir):
            raise ValueError(f"CFP image {rel!r} (listed in {proto_dir}) is not under "
                             f"{images_dir}; cannot re-root it at images={images!r}")
        return os.path.join(os.fspath(images), below)

    paths = [resolve(p) for pair in rel_pairs for p in pair]
    if check_files:
        _require_files(paths, split_dir)
    return paths, np.asarray(issame, dtype=bool), np.asarray(folds, dtype=np.int64)


# ---------------------------------------------------------------------------------------------
# CALFW / CPLFW


def read_two_line_pairs(pairs_txt, images_dir, folds=10, check_files=True):
    """Read CALFW's ``pairs_CALFW.txt`` or CPLFW's ``pairs_CPLFW.txt``.

    Two consecutive lines ``IMAGE LABEL`` form a pair (both lines carry the same label); label
    ``0`` is a pair of different people, any other value the same person (CALFW writes the
    positive pair's fold, 1..10). Images are files directly under ``images_dir``
    (``aligned images/Abel_Pacheco_0001.jpg``). Folds: the positives in file order are cut into
    ``folds`` contiguous blocks, so are the negatives, and fold k is the k-th block of each
    (the release lists 3,000 positives then 3,000 negatives: fold k = positives 300k..300k+299
    and negatives 300k..300k+299).

    Returns ``(paths, issame, folds)``.
    """
    pairs_txt = os.fspath(pairs_txt)
    paths, issame = [], []
    for (n1, l1), (n2, l2) in _line_pairs(pairs_txt, "pairs of 'IMAGE LABEL' lines",
                                          "two 'IMAGE LABEL' lines per pair"):
        parsed = []
        for lineno, line in ((n1, l1), (n2, l2)):
            fields = line.split()
            try:
                if len(fields) != 2:
                    raise ValueError
                label = int(fields[1])
                if label < 0:
                    raise ValueError
            except ValueError:
                raise ValueError(f"{pairs_txt}: line {lineno} is {line!r}; expected 'IMAGE "
                                 "LABEL' with LABEL 0 (different people) or a positive "
                                 "integer (same person)") from None
            parsed.append((fields[0], label))
        if parsed[0][1] != parsed[1][1]:
            raise ValueError(f"{pairs_txt}: lines {n1} and {n2} form a pair but carry different "
                             f"labels ({parsed[0][1]} and {parsed[1][1]})")
        paths += [os.path.join(os.fspath(images_dir), parsed[0][0]),
                  os.path.join(os.fspath(images_dir), parsed[1][0])]
        issame.append(parsed[0][1] != 0)
    issame = np.asarray(issame, dtype=bool)
    _check_both_kinds(issame, pairs_txt)
    fold_ids = positive_negative_folds(issame, folds)
    if check_files:
        _require_files(paths, pairs_txt)
    return paths, issame, fold_ids


def _line_pairs(pairs_txt, expected, per_pair):
    """The non-empty ``(lineno, line)`` of a two-lines-per-pair list, paired; an empty file or
    an odd count is an error saying what was ``expected``."""
    lines = _read_lines(pairs_txt)
    if not lines:
        raise ValueError(f"{pairs_txt}: empty file; expected {expected}")
    if len(lines) % 2:
        raise ValueError(f"{pairs_txt}: {len(lines)} non-empty lines; expected an even number "
                         f"({per_pair})")
    return list(zip(lines[0::2], lines[1::2]))


def _check_both_kinds(issame, source):
    n_gen = int(issame.sum())
    if n_gen == 0 or n_gen == issame.shape[0]:
        raise ValueError(f"{source}: {n_gen} matched and {issame.shape[0] - n_gen} mismatched "
                         "pairs; a verification list needs both")


# ---------------------------------------------------------------------------------------------
# SLLFW


def read_sllfw(pairs_txt, images_dir, folds=10, check_files=True):
    """Read SLLFW's ``pair_SLLFW.txt``: one LFW image per line, ``name/name_NNNN.jpg`` relative
    to the LFW image folder ``images_dir``; two consecutive lines form a pair, of the same person
    when both images are in the same ``name`` folder. The 6,000 pairs are 10 folds of 300
    matched + 300 mismatched pairs in file order (LFW's layout): ``folds`` contiguous blocks.

    Returns ``(paths, issame, folds)``.
    """
    pairs_txt = os.fspath(pairs_txt)
    paths, issame = [], []
    for (n1, l1), (n2, l2) in _line_pairs(pairs_txt, "one 'name/name_NNNN.jpg' per line",
                                          "two image lines per pair"):
        names = []
        for lineno, line in ((n1, l1), (n2, l2)):
            rel = line.replace("\\", "/")
            parts = rel.split("/")
            if len(line.split()) != 1 or len(parts) < 2 or not all(parts):
                raise ValueError(f"{pairs_txt}: line {lineno} is {line!r}; expected one image "
                                 "path 'name/name_NNNN.jpg'")
            names.append(parts[-2])
            paths.append(os.path.join(os.fspath(images_dir), *parts))
        issame.append(names[0] == names[1])
    issame = np.asarray(issame, dtype=bool)
    _check_both_kinds(issame, pairs_txt)
    fold_ids = block_folds(issame.shape[0], folds)
    if check_files:
        _require_files(paths, pairs_txt)
    return paths, issame, fold_ids


# ---------------------------------------------------------------------------------------------
# RFW


def _rfw_number(text, pairs_txt, lineno, line):
    try:
        n = int(text)
        if n < 0:
            raise ValueError
    except ValueError:
        raise ValueError(f"{pairs_txt}: line {lineno} is {line!r}; image numbers must be "
                         "non-negative integers") from None
    return n


def read_rfw(pairs_txt, images_dir, ext="jpg", folds=10, check_files=True):
    """Read one RFW race list, ``test/txts/<Race>/<Race>_pairs.txt``: no header; matched lines
    ``id<TAB>n1<TAB>n2``, mismatched lines ``id1<TAB>n1<TAB>id2<TAB>n2``, ids being MS-Celeb
    freebase ids (``m.0c7mh2``). Image ``n`` of ``id`` is
    ``images_dir/id/id_%04d.ext`` (``test/data/African/m.0c7mh2/m.0c7mh2_0003.jpg``). The
    ~6,000 pairs are read as ``folds`` contiguous blocks in file order (LFW's protocol on
    RFW's LFW-style list).

    Returns ``(paths, issame, folds)``.
    """
    pairs_txt = os.fspath(pairs_txt)
    ext = ext.lstrip(".")
    lines = _read_lines(pairs_txt)
    if not lines:
        raise ValueError(f"{pairs_txt}: empty file; expected RFW pair lines")

    def image(name, n):
        return os.path.join(os.fspath(images_dir), name, f"{name}_{n:04d}.{ext}")

    paths, issame = [], []
    for lineno, line in lines:
        fields = line.split()
        if len(fields) == 3:
            name, n1, n2 = fields
            paths += [image(name, _rfw_number(n1, pairs_txt, lineno, line)),
                      image(name, _rfw_number(n2, pairs_txt, lineno, line))]
            issame.append(True)
        elif len(fields) == 4:
            name1, n1, name2, n2 = fields
            paths += [image(name1, _rfw_number(n1, pairs_txt, lineno, line)),
                      image(name2, _rfw_number(n2, pairs_txt, lineno, line))]
            issame.append(False)
        else:
            raise ValueError(f"{pairs_txt}: line {lineno} is {line!r}; expected 'id n1 n2' "
                             "(matched) or 'id1 n1 id2 n2' (mismatched)")
    issame = np.asarray(issame, dtype=bool)
    _check_both_kinds(issame, pairs_txt)
    fold_ids = block_folds(issame.shape[0], folds)
    if check_files:
        _require_files(paths, pairs_txt)
    return paths, issame, fold_ids
