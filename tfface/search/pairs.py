"""Evaluation lists from an identity folder: the library behind ``tfface pairs DIR``.

* :func:`make_pairs` / :func:`write_pairs` — an LFW-format ``pairs.txt`` (LFW README, "View 2"):
  a first line ``<folds>\\t<pairs per fold>``, then for each fold ``<pairs per fold>`` matched
  lines ``name\\tn1\\tn2`` followed by as many mismatched lines ``name1\\tn1\\tname2\\tn2``.
  Identities are split across folds first, so no identity appears in two folds (as in LFW's
  View 2, which makes the ten folds independent for cross-validation); identities with two or
  more images are spread evenly, so every fold can draw its matched pairs. No pair repeats;
  matched lines have ``n1 < n2`` and mismatched lines ``name1 < name2``, sorted, as LFW writes
  them. The draw is seeded: the same folder and seed give the same file.
* An image's number ``n``: when every image of an identity is named LFW's way
  (``<name>_<NNNN>.<ext>``) the number in its name, so ``tfface eval lfw`` reads the pairs with
  the folder as its image root; otherwise its 1-based position in the identity's sorted list of
  images (:func:`identity_images`).
* :func:`split_probe_gallery` / :func:`write_split` — disjoint ``gallery.txt`` / ``probes.txt``
  lists for ``tfface enrol`` / ``tfface search``: each enrolled identity gives
  ``gallery_per_identity`` images to the gallery and the rest to the probes; a seeded
  ``unknown_fraction`` of identities is not enrolled at all (all its images are probes whose
  right answer is "unknown").
"""
import math
import os
import re

import numpy as np

from tfface.data.images import ALL_IMAGE_EXTENSIONS, identity_index
from tfface.files import InputError, atomic_write

DEFAULT_FOLDS = 10
DEFAULT_PER_FOLD = 300


def identity_images(root):
    """``(names, images, numbers)`` of an identity folder: sorted identity names, each one's
    sorted image paths (relative to ``root``) and their pair numbers (see the module
    docstring)."""
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise InputError(f"{root} is not a folder; expected an identity folder (one sub-folder of photos per identity)")
    index = identity_index(root, ALL_IMAGE_EXTENSIONS)
    names = list(index.names)
    images = [[] for _ in names]
    for path, label in zip(index.paths, index.labels):
        images[label].append(os.path.relpath(path, root))
    numbers = []
    for name, paths in zip(names, images):
        pattern = re.compile(re.escape(name) + r"_(\d+)\.[^.]+$")
        found = [pattern.match(os.path.basename(p)) for p in paths]
        nums = [int(m.group(1)) for m in found] if all(found) else []
        if nums and len(set(nums)) == len(nums):
            numbers.append(nums)
        else:
            numbers.append(list(range(1, len(paths) + 1)))
    return names, images, numbers


def assign_folds(counts, folds, rng):
    """Fold of each identity: identities with 2+ images dealt round-robin in a seeded order,
    then the others, so folds get equal shares of both."""
    counts = np.asarray(counts)
    fold = np.full(len(counts), -1, dtype=np.int64)
    position = 0
    for group in (np.flatnonzero(counts >= 2), np.flatnonzero(counts < 2)):
        order = rng.permutation(group)
        fold[order] = (np.arange(len(order)) + position) % folds
        position += len(order)
    return fold


def _matched_capacity(counts):
    return int(sum(n * (n - 1) // 2 for n in counts))


def _mismatched_capacity(counts):
    counts = np.asarray(counts, dtype=np.int64)
    return int((counts.sum() ** 2 - (counts ** 2).sum()) // 2)


def _draw_matched(members, counts, numbers, names, per_fold, rng):
    pairs_per = np.array([counts[i] * (counts[i] - 1) // 2 for i in members], dtype=np.float64)
    if pairs_per.sum() <= 4 * per_fold:
        candidates = [(i, a, b) for i in members for a in range(counts[i]) for b in range(a + 1, counts[i])]
        picked = [candidates[j] for j in rng.choice(len(candidates), size=per_fold, replace=False)]
    else:
        weights = pairs_per / pairs_per.sum()
        picked, seen = [], set()
        while len(picked) < per_fold:
            i = members[rng.choice(len(members), p=weights)]
            a, b = sorted(rng.choice(counts[i], size=2, replace=False))
            if (i, a, b) not in seen:
                seen.add((i, a, b))
                picked.append((i, int(a), int(b)))
    lines = []
    for i, a, b in picked:
        n1, n2 = sorted((numbers[i][a], numbers[i][b]))
        lines.append((names[i], n1, n2))
    return sorted(lines)


def _draw_mismatched(members, counts, numbers, names, per_fold, rng):
    member_counts = np.array([counts[i] for i in members])
    if _mismatched_capacity(member_counts) <= 4 * per_fold:
        candidates = [(i, a, j, b) for x, i in enumerate(members) for j in members[x + 1:]
                      for a in range(counts[i]) for b in range(counts[j])]
        picked = [candidates[k] for k in rng.choice(len(candidates), size=per_fold, replace=False)]
    else:
        weights = member_counts / member_counts.sum()
        picked, seen = [], set()
        while len(picked) < per_fold:
            x, y = rng.choice(len(members), size=2, p=weights)
            if x == y:
                continue
            i, j = members[x], members[y]
            a, b = int(rng.integers(counts[i])), int(rng.integers(counts[j]))
            key = min((i, a), (j, b)) + max((i, a), (j, b))
            if key not in seen:
                seen.add(key)
                picked.append(key)
    lines = []
    for i, a, j, b in picked:
        first, second = sorted([(names[i], numbers[i][a]), (names[j], numbers[j][b])])
        lines.append((*first, *second))
    return sorted(lines)


def make_pairs(names, counts, numbers=None, folds=DEFAULT_FOLDS, per_fold=None, seed=0):
    """``(pairs, per_fold)``: per fold a ``(matched, mismatched)`` pair of line lists (tuples
    ``(name, n1, n2)`` and ``(name1, n1, name2, n2)``), identity-disjoint across folds.

    ``per_fold`` None: LFW's 300 or, when a fold cannot hold that many distinct pairs, the most
    every fold can hold. An explicit ``per_fold`` that some fold cannot hold is refused, naming
    the largest possible."""
    counts = [int(c) for c in counts]
    numbers = numbers or [list(range(1, c + 1)) for c in counts]
    if folds < 1:
        raise InputError(f"--folds {folds}: expected at least 1")
    multi = sum(c >= 2 for c in counts)
    if multi < folds or len(counts) < 2 * folds:
        raise InputError(
            f"{len(counts)} identities ({multi} with 2+ images) cannot fill {folds} identity-disjoint folds: "
            f"each fold needs one identity with 2+ images (matched pairs) and two identities (mismatched "
            f"pairs); use fewer --folds")
    rng = np.random.default_rng(seed)
    fold_of = assign_folds(counts, folds, rng)
    members = [list(np.flatnonzero(fold_of == f)) for f in range(folds)]
    capacity = min(min(_matched_capacity([counts[i] for i in m]), _mismatched_capacity([counts[i] for i in m]))
                   for m in members)
    if per_fold is None:
        per_fold = min(DEFAULT_PER_FOLD, capacity)
    elif per_fold < 1 or per_fold > capacity:
        raise InputError(f"--per-fold {per_fold}: with these identities split into {folds} disjoint folds, "
                         f"every fold can hold at most {capacity} distinct matched and mismatched pairs; "
                         f"ask for 1..{capacity} or fewer --folds")
    pairs = []
    for m in members:
        matched = _draw_matched([i for i in m if counts[i] >= 2], counts, numbers, names, per_fold, rng)
        mismatched = _draw_mismatched(m, counts, numbers, names, per_fold, rng)
        pairs.append((matched, mismatched))
    return pairs, per_fold


def pairs_text(pairs, per_fold):
    lines = [f"{len(pairs)}\t{per_fold}"]
    for matched, mismatched in pairs:
        lines += [f"{n}\t{a}\t{b}" for n, a, b in matched]
        lines += [f"{n1}\t{a}\t{n2}\t{b}" for n1, a, n2, b in mismatched]
    return "\n".join(lines) + "\n"


def write_pairs(path, pairs, per_fold):
    """Write ``pairs`` (from :func:`make_pairs`) to ``path`` atomically."""
    for matched, mismatched in pairs:
        for line in matched + mismatched:
            if any(isinstance(v, str) and any(c.isspace() for c in v) for v in line):
                raise InputError(f"identity name {line[0]!r} contains white space, which the LFW pairs "
                                 "format cannot hold; rename the folder")
    atomic_write(path, pairs_text(pairs, per_fold))


def split_probe_gallery(names, images, gallery_per_identity=1, unknown_fraction=0.1, seed=0):
    """``(gallery, probes)``: lists of ``(relative path, identity)`` and ``(relative path,
    identity, enrolled)``; disjoint. A seeded ``unknown_fraction`` of the identities (rounded)
    is left out of the gallery, as is every identity with fewer than ``gallery_per_identity``
    images; the others give their first ``gallery_per_identity`` images of a seeded shuffle to
    the gallery and the rest to the probes."""
    if gallery_per_identity < 1:
        raise InputError(f"--gallery-per-identity {gallery_per_identity}: expected at least 1")
    if not 0 <= unknown_fraction < 1:
        raise InputError(f"--unknown-fraction {unknown_fraction}: expected a value in [0, 1)")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(names))
    unknown = set(order[: int(math.floor(unknown_fraction * len(names) + 0.5))].tolist())
    gallery, probes = [], []
    for i, (name, paths) in enumerate(zip(names, images)):
        shuffled = [paths[j] for j in rng.permutation(len(paths))]
        if i in unknown or len(paths) < gallery_per_identity:
            probes += [(p, name, False) for p in sorted(shuffled)]
            continue
        gallery += [(p, name) for p in sorted(shuffled[:gallery_per_identity])]
        probes += [(p, name, True) for p in sorted(shuffled[gallery_per_identity:])]
    if not gallery:
        raise InputError("the split enrols no identity: lower --unknown-fraction or --gallery-per-identity")
    return gallery, probes


def write_split(out_dir, root, gallery, probes):
    """Write ``gallery.txt`` (``path\\tidentity``, the list format ``tfface enrol`` reads) and
    ``probes.txt`` (``path\\tidentity\\tenrolled|unknown``) into ``out_dir``, paths relative to
    ``out_dir``; atomically each. Returns the two paths."""
    os.makedirs(out_dir, exist_ok=True)

    def rel(p):
        return os.path.relpath(os.path.join(root, p), out_dir)

    for p, *_ in gallery + probes:
        if "\t" in p or "\n" in p:
            raise InputError(f"{p!r}: a tab or newline in a file name cannot be listed")
    g = os.path.join(out_dir, "gallery.txt")
    pr = os.path.join(out_dir, "probes.txt")
    atomic_write(g, "".join(f"{rel(p)}\t{name}\n" for p, name in gallery))
    atomic_write(pr, "".join(f"{rel(p)}\t{name}\t{'enrolled' if known else 'unknown'}\n"
                             for p, name, known in probes))
    return g, pr
