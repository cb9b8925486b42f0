"""Readers of IJB-B / IJB-C as insightface's ``IJB_release`` distributes them (numpy only).

Layout (``IJBC`` shown; ``IJBB`` is the same with the prefix ``ijbb``)::

    IJBC/
      loose_crop/                          the face images (1.jpg, 2.jpg, ...)
      meta/ijbc_name_5pts_score.txt        "name x1 y1 x2 y2 x3 y3 x4 y4 x5 y5 score" per image:
                                           five landmarks in loose_crop pixels (left eye, right
                                           eye, nose, left mouth, right mouth) and the detector's
                                           face score
      meta/ijbc_face_tid_mid.txt           "name template_id media_id", the same images in the
                                           same order
      meta/ijbc_template_pair_label.txt    "template_1 template_2 label" (1 = same subject), the
                                           1:1 verification pairs
      meta/ijbc_1N_gallery_G1.csv          1:N (insightface's updated meta): CSV with a header,
      meta/ijbc_1N_gallery_G2.csv          one row per gallery/probe image, columns TEMPLATE_ID,
      meta/ijbc_1N_probe_mixed.csv         SUBJECT_ID, FILENAME, ... (IJB-B: gallery S1/S2)

All lists are space separated without header, as insightface's ``ijb_11.py`` / ``ijb_1n.py`` read
them. Errors name the file, the line and what was expected.
"""
import dataclasses
import os

import numpy as np

#: benchmark name -> (folder, file prefix, the two 1:N galleries).
SETS = {
    "ijbb": ("IJBB", "ijbb", ("S1", "S2")),
    "ijbc": ("IJBC", "ijbc", ("G1", "G2")),
}


def _check_set(name):
    if name not in SETS:
        raise ValueError(f"IJB set {name!r}; expected one of {sorted(SETS)}")
    return SETS[name]


def ijb_root(data, name):
    """The folder holding ``meta/`` for set ``name`` ("ijbb"/"ijbc"): ``data`` itself or its
    sub-folder ``IJBB``/``IJBC`` (``IJB_release/`` as unpacked)."""
    folder, prefix, _ = _check_set(name)
    data = os.fspath(data)
    for root in (data, os.path.join(data, folder)):
        if os.path.isfile(os.path.join(root, "meta", f"{prefix}_face_tid_mid.txt")):
            return root
    raise ValueError(f"{data}: no meta/{prefix}_face_tid_mid.txt here nor in {folder}/ ; expected "
                     f"insightface's IJB_release layout ({folder}/meta/, {folder}/loose_crop/)")


def meta_file(root, name, kind):
    """Path of a meta file: ``kind`` is "tid_mid", "5pts", "pairs", "probe" or a gallery name
    (G1/G2 for IJB-C, S1/S2 for IJB-B)."""
    _, prefix, galleries = _check_set(name)
    files = {
        "tid_mid": f"{prefix}_face_tid_mid.txt",
        "5pts": f"{prefix}_name_5pts_score.txt",
        "pairs": f"{prefix}_template_pair_label.txt",
        "probe": f"{prefix}_1N_probe_mixed.csv",
    }
    files.update({g: f"{prefix}_1N_gallery_{g}.csv" for g in galleries})
    if kind not in files:
        raise ValueError(f"{name}: meta file kind {kind!r}; expected one of {sorted(files)}")
    return os.path.join(root, "meta", files[kind])


def _lines(path):
    if not os.path.isfile(path):
        raise ValueError(f"{path}: file not found")
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if line.strip():
                yield lineno, line.split()


def _int(text, path, lineno, what):
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{path}: line {lineno}: {what} {text!r} is not an integer") from None


def read_face_tid_mid(path):
    """``name template_id media_id`` per line -> ``(names list, templates int64, medias int64)``."""
    names, templates, medias = [], [], []
    for lineno, fields in _lines(path):
        if len(fields) != 3:
            raise ValueError(f"{path}: line {lineno} has {len(fields)} fields; expected "
                             "'image_name template_id media_id'")
        names.append(fields[0])
        templates.append(_int(fields[1], path, lineno, "template id"))
        medias.append(_int(fields[2], path, lineno, "media id"))
    if not names:
        raise ValueError(f"{path}: no images listed")
    return names, np.asarray(templates, np.int64), np.asarray(medias, np.int64)


def read_name_5pts_score(path):
    """``name`` + 10 landmark coordinates + detector score per line -> ``(names, landmarks
    (N, 5, 2) float64, scores (N,) float64)``."""
    names, values = [], []
    for lineno, fields in _lines(path):
        if len(fields) != 12:
            raise ValueError(f"{path}: line {lineno} has {len(fields)} fields; expected "
                             "'image_name x1 y1 ... x5 y5 detector_score' (12)")
        try:
            values.append([float(v) for v in fields[1:]])
        except ValueError:
            raise ValueError(f"{path}: line {lineno}: landmarks and score must be numbers, got "
                             f"{fields[1:]}") from None
        names.append(fields[0])
    if not names:
        raise ValueError(f"{path}: no images listed")
    values = np.asarray(values, np.float64)
    if not np.isfinite(values).all():
        bad = int(np.flatnonzero(~np.isfinite(values).all(axis=1))[0])
        raise ValueError(f"{path}: image {names[bad]!r} has a non-finite landmark or score")
    return names, values[:, :10].reshape(-1, 5, 2), values[:, 10]


def read_template_pairs(path):
    """``template_1 template_2 label`` per line -> ``(t1, t2, issame)``: int32 template ids (views
    of one ``(P, 3)`` array, 188 MB for IJB-C's 15.7M pairs) and bool labels.

    numpy's C parser reads IJB-C's list in a few seconds."""
    if not os.path.isfile(path):
        raise ValueError(f"{path}: file not found")
    try:
        pairs = np.loadtxt(path, dtype=np.int32, ndmin=2)
    except ValueError as err:
        raise ValueError(f"{path}: expected lines of three integers 'template_1 template_2 "
                         f"label' ({err})") from None
    if pairs.shape[0] == 0 or pairs.shape[1] != 3:
        raise ValueError(f"{path}: expected lines of three integers 'template_1 template_2 label',"
                         f" got {pairs.shape[1] if pairs.size else 0} columns")
    labels = pairs[:, 2]
    bad = np.flatnonzero((labels != 0) & (labels != 1))
    if bad.size:
        raise ValueError(f"{path}: line {bad[0] + 1}: label {labels[bad[0]]} is not 0 or 1")
    return pairs[:, 0], pairs[:, 1], labels == 1


def read_1n_csv(path):
    """A 1:N gallery or probe CSV -> ``(template ids, subject ids)``, one entry per template in
    order of first appearance (the file has one row per image). The header names the columns
    TEMPLATE_ID and SUBJECT_ID; without those names the first two columns are used, as
    insightface's ``ijb_1n.py`` does (it skips the first row)."""
    if not os.path.isfile(path):
        raise ValueError(f"{path}: file not found")
    with open(path, encoding="utf-8") as fh:
        header = fh.readline().strip().split(",")
        cols = [h.strip().upper() for h in header]
        t_col = cols.index("TEMPLATE_ID") if "TEMPLATE_ID" in cols else 0
        s_col = cols.index("SUBJECT_ID") if "SUBJECT_ID" in cols else 1
        subject_of = {}
        for lineno, line in enumerate(fh, start=2):
            if not line.strip():
                continue
            fields = line.rstrip("\r\n").split(",")
            if len(fields) <= max(t_col, s_col):
                raise ValueError(f"{path}: line {lineno} has {len(fields)} columns; expected "
                                 "TEMPLATE_ID and SUBJECT_ID")
            t = _int(fields[t_col], path, lineno, "TEMPLATE_ID")
            s = _int(fields[s_col], path, lineno, "SUBJECT_ID")
            if subject_of.setdefault(t, s) != s:
                raise ValueError(f"{path}: line {lineno}: template {t} has subject {s} here and "
                                 f"{subject_of[t]} above; a template holds one subject")
    if not subject_of:
        raise ValueError(f"{path}: no templates listed")
    return (np.fromiter(subject_of.keys(), np.int64, len(subject_of)),
            np.fromiter(subject_of.values(), np.int64, len(subject_of)))


@dataclasses.dataclass
class IJBImages:
    """The images of an IJB set, in the order of the meta files (line i of both files).

    ``paths``: loose_crop files; ``landmarks`` (N, 5, 2); ``scores``: detector face scores;
    ``templates``, ``medias``: int64 ids."""

    paths: list
    landmarks: np.ndarray
    scores: np.ndarray
    templates: np.ndarray
    medias: np.ndarray


def read_ijb_images(root, name, image_dir="loose_crop"):
    """Read ``*_name_5pts_score.txt`` and ``*_face_tid_mid.txt`` of ``root`` (see
    :func:`ijb_root`) and check that they list the same images in the same order."""
    lmk_file, tid_file = meta_file(root, name, "5pts"), meta_file(root, name, "tid_mid")
    names, landmarks, scores = read_name_5pts_score(lmk_file)
    names2, templates, medias = read_face_tid_mid(tid_file)
    if len(names) != len(names2):
        raise ValueError(f"{lmk_file} lists {len(names)} images but {tid_file} lists "
                         f"{len(names2)}; they must list the same images line by line")
    for i, (a, b) in enumerate(zip(names, names2)):
        if a != b:
            raise ValueError(f"image {i + 1} is {a!r} in {lmk_file} but {b!r} in {tid_file}; they "
                             "must list the same images line by line")
    folder = os.path.join(root, image_dir)
    if not os.path.isdir(folder):
        raise ValueError(f"{folder}: image folder not found (expected {image_dir}/ beside meta/)")
    return IJBImages([os.path.join(folder, n) for n in names], landmarks, scores, templates,
                     medias)
