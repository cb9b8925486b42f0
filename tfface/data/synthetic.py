"""The embedded synthetic data set: face-like images with identity structure.

Each identity is a fixed draw of facial parameters (face shape, skin tone, eye/brow/nose/mouth
geometry and colours, hair style and colour); each image of it redraws the nuisance (pose:
rotation, scale, shift; expression: smile, mouth opening, eye openness, brow raise; lighting:
gain and a directional gradient; background; blur; sensor noise; occasional occlusion).
Images per identity follow a power law over the identity's rank, as in MS-Celeb-1M (a few
identities with many images, a long tail with few).

Layout written by :func:`generate_synthetic` (``tfface synth OUT`` is its command line, in
``tfface.commands.synth``; ``tfface build`` and the pairs readers read this layout)::

    OUT/train/<identity>/<identity>_0001.jpg ...
    OUT/test/<identity>/<identity>_0001.jpg ...      held-out identities, disjoint from train
    OUT/test/pairs.txt                                LFW's layout (see below)
    OUT/info.json                                     seed, counts, parameters

``pairs.txt`` is LFW View 2's format: a header ``folds<TAB>pairs_per_fold``, then per fold
``pairs_per_fold`` matched lines ``name<TAB>n1<TAB>n2`` followed by ``pairs_per_fold``
mismatched lines ``name1<TAB>n1<TAB>name2<TAB>n2``; image numbers are 1-based. As in LFW the
folds are identity-disjoint, and no pair repeats.

Every image is drawn from its own random generator keyed by ``(seed, split, identity, image)``,
so the output is byte-identical for a seed whatever the number of worker processes.

This is a substitute that exercises every part of the system (decoding, augmentation,
imbalance, verification protocol), not a benchmark of real faces.
"""
import concurrent.futures
import io
import json
import math
import multiprocessing
import os
import time

import numpy as np

GENERATOR_VERSION = 1
_TRAIN, _TEST = 1, 2
_SPLIT_NAMES = {_TRAIN: "train", _TEST: "test"}

# Nuisance ranges (per image). Chosen so that the identity signal (colours and geometry of the
# face) dominates, yet two images of one identity differ far more pixel-wise than the threshold
# a raw-pixel matcher would need (pose, background and lighting move most pixels).
NUISANCE = {
    "rotation_deg": 12.0,  # uniform in [-r, r]
    "scale": (0.88, 1.12),
    "shift": 0.06,  # fraction of the image size, uniform in [-s, s] per axis
    "gain": (0.75, 1.25),  # global brightness factor
    "gradient": 0.3,  # directional lighting: factor 1 +- g across the image
    "blur_probability": 0.5,
    "blur_radius": (0.3, 1.2),
    "noise_sigma": (0.0, 6.0),  # in 8-bit units
    "occlusion_probability": 0.15,
    "jpeg_quality": 90,
}


# ---------------------------------------------------------------------------------------------
# parameters


def _rng(seed, *keys):
    return np.random.default_rng(np.random.SeedSequence([int(seed), *map(int, keys)]))


def _identity_params(seed, split, index):
    """The fixed facial parameters of one identity (a plain dict of floats and colour tuples)."""
    r = _rng(seed, split, index, 0x1D)
    skin_base = np.array([[224, 188, 160], [198, 150, 112], [160, 112, 80], [110, 74, 52]], float)
    w = r.dirichlet(np.ones(4) * 0.7)
    skin = np.clip(w @ skin_base + r.normal(0, 10, 3), 40, 250)
    hair = np.clip(
        r.choice([[30, 22, 18], [90, 60, 30], [170, 130, 70], [200, 190, 170], [120, 40, 20]])
        + r.normal(0, 18, 3),
        5,
        250,
    )
    return {
        "face_w": r.uniform(0.30, 0.42),  # half-width / image size
        "face_h": r.uniform(0.40, 0.50),
        "jaw": r.uniform(0.0, 1.0),  # 0 round .. 1 pointed chin
        "skin": skin,
        "eye_y": r.uniform(-0.10, 0.0),  # relative to face centre, in image units
        "eye_dx": r.uniform(0.11, 0.17),
        "eye_w": r.uniform(0.045, 0.075),
        "eye_h": r.uniform(0.020, 0.035),
        "iris": r.uniform(20, 200, 3),
        "brow_dy": r.uniform(0.035, 0.07),
        "brow_tilt": r.uniform(-0.025, 0.025),
        "brow_w": r.uniform(0.012, 0.028),
        "brow_len": r.uniform(0.06, 0.10),
        "brow": np.clip(hair * r.uniform(0.5, 1.0), 0, 255),
        "nose_len": r.uniform(0.08, 0.16),
        "nose_w": r.uniform(0.03, 0.07),
        "mouth_y": r.uniform(0.17, 0.26),
        "mouth_w": r.uniform(0.08, 0.15),
        "mouth_h": r.uniform(0.015, 0.035),
        "lip": np.clip(skin * np.array([0.85, 0.55, 0.55]) + r.normal(0, 15, 3), 0, 255),
        "hair": hair,
        "hairline": r.uniform(0.55, 0.9),  # how far down the forehead the hair reaches
        "hair_style": int(r.integers(0, 4)),  # 0 short, 1 long, 2 bald, 3 side parting
        "beard": bool(r.random() < 0.25),
        "mole": r.uniform(-0.2, 0.2, 2) if r.random() < 0.3 else None,
    }


# ---------------------------------------------------------------------------------------------
# drawing


def _colour(c):
    return tuple(int(round(float(v))) for v in c)


def _draw_face(p, r, size):
    """Draw one face (RGBA, transparent background) at ``size``: identity ``p``, expression from ``r``."""
    from PIL import Image, ImageDraw

    layer = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    d = ImageDraw.Draw(layer)
    s = float(size)
    cx, cy = 0.5 * s, 0.53 * s
    fw, fh = p["face_w"] * s, p["face_h"] * s
    skin = _colour(p["skin"])
    hair = _colour(p["hair"])

    if p["hair_style"] == 1:  # long hair behind the face
        d.ellipse([cx - fw * 1.18, cy - fh * 1.12, cx + fw * 1.18, cy + fh * 0.75], fill=hair)

    # Face: an ellipse whose lower part narrows towards the chin by the identity's jaw.
    d.ellipse([cx - fw, cy - fh, cx + fw, cy + fh * (1.0 - 0.2 * p["jaw"])], fill=skin)
    chin = fh * (0.2 * p["jaw"])
    d.polygon(
        [(cx - fw * 0.75, cy + fh * 0.45), (cx + fw * 0.75, cy + fh * 0.45), (cx, cy + fh + chin * 0.2)],
        fill=skin,
    )
    # Ears.
    for side in (-1, 1):
        ex = cx + side * fw * 0.98
        d.ellipse([ex - fw * 0.1, cy - fh * 0.12, ex + fw * 0.1, cy + fh * 0.18], fill=skin)

    if p["hair_style"] != 2:
        top = cy - fh * 1.08
        line = cy - fh * (1.0 - 0.45 * p["hairline"])
        d.chord([cx - fw * 1.05, top, cx + fw * 1.05, line + (line - top)], 180, 360, fill=hair)
        if p["hair_style"] == 3:
            d.polygon([(cx - fw * 1.0, line), (cx - fw * 0.1, top), (cx - fw * 1.05, top)], fill=hair)

    if p["beard"]:
        beard = tuple(int(0.8 * c) for c in hair)
        d.chord([cx - fw * 0.85, cy + fh * 0.05, cx + fw * 0.85, cy + fh * 1.02], 0, 180, fill=beard)

    # Expression: eye openness, brow raise, smile and mouth opening vary per image.
    openness = r.uniform(0.35, 1.15)
    raise_ = r.uniform(-0.012, 0.018) * s
    smile = r.uniform(-0.3, 1.0)
    opening = r.uniform(0.0, 1.0) ** 2

    ey = cy + p["eye_y"] * s
    ew, eh = p["eye_w"] * s, max(p["eye_h"] * s * openness, 0.8)
    for side in (-1, 1):
        ex = cx + side * p["eye_dx"] * s
        d.ellipse([ex - ew, ey - eh, ex + ew, ey + eh], fill=(245, 245, 240))
        ir = min(ew * 0.55, eh * 1.1)
        d.ellipse([ex - ir, ey - ir, ex + ir, ey + ir], fill=_colour(p["iris"]))
        d.ellipse([ex - ir * 0.45, ey - ir * 0.45, ex + ir * 0.45, ey + ir * 0.45], fill=(10, 10, 10))
        by = ey - p["brow_dy"] * s - raise_
        bl = p["brow_len"] * s
        tilt = side * p["brow_tilt"] * s
        d.line(
            [(ex - bl * 0.6, by + tilt), (ex + bl * 0.6, by - tilt)],
            fill=_colour(p["brow"]),
            width=max(1, int(round(p["brow_w"] * s))),
        )

    shade = tuple(int(0.78 * c) for c in skin)
    nl, nw = p["nose_len"] * s, p["nose_w"] * s
    d.polygon([(cx, ey + eh), (cx - nw, ey + nl + eh), (cx + nw, ey + nl + eh)], fill=shade)

    my = cy + p["mouth_y"] * s
    mw, mh = p["mouth_w"] * s, p["mouth_h"] * s
    lip = _colour(p["lip"])
    curve = smile * mh * 1.5
    if opening > 0.25:
        d.ellipse([cx - mw, my - mh, cx + mw, my + mh * (1 + 2 * opening)], fill=lip)
        d.ellipse([cx - mw * 0.7, my - mh * 0.3, cx + mw * 0.7, my + mh * (0.3 + 1.6 * opening)], fill=(60, 20, 25))
    else:
        d.line([(cx - mw, my - curve), (cx, my + curve * 0.5), (cx + mw, my - curve)], fill=lip,
               width=max(2, int(round(mh * 1.2))), joint="curve")

    if p["mole"] is not None:
        mx, myy = cx + p["mole"][0] * s, cy + 0.1 * s + p["mole"][1] * s * 0.5
        rr = max(1.0, 0.012 * s)
        d.ellipse([mx - rr, myy - rr, mx + rr, myy + rr], fill=(60, 35, 25))
    return layer


def _render(p, seed, split, identity, image_index, size):
    """Render one image of identity ``p`` as JPEG bytes."""
    from PIL import Image, ImageDraw, ImageFilter

    r = _rng(seed, split, identity, image_index + 1)
    face = _draw_face(p, r, size)

    # Pose: an affine map (rotation, scale, shift) about the image centre. PIL's transform takes
    # the inverse map (output -> input coordinates).
    angle = math.radians(r.uniform(-1, 1) * NUISANCE["rotation_deg"])
    scale = r.uniform(*NUISANCE["scale"])
    tx, ty = r.uniform(-1, 1, 2) * NUISANCE["shift"] * size
    c = size / 2.0
    cos, sin = math.cos(angle) / scale, math.sin(angle) / scale
    a, b = cos, sin
    dd, e = -sin, cos
    coeffs = (a, b, c - a * (c + tx) - b * (c + ty), dd, e, c - dd * (c + tx) - e * (c + ty))
    face = face.transform((size, size), Image.AFFINE, coeffs, resample=Image.BILINEAR)

    # Background: a gradient between two random colours, plus a few random shapes as clutter.
    c0, c1 = r.uniform(0, 255, 3), r.uniform(0, 255, 3)
    t = np.linspace(0.0, 1.0, size)[None, :, None]
    if r.random() < 0.5:
        t = t.transpose(1, 0, 2)
    bg = Image.fromarray(np.broadcast_to(c0 + (c1 - c0) * t, (size, size, 3)).astype(np.uint8))
    bd = ImageDraw.Draw(bg)
    for _ in range(int(r.integers(0, 4))):
        x0, y0 = r.uniform(0, size, 2)
        w0, h0 = r.uniform(0.1, 0.4, 2) * size
        bd.rectangle([x0, y0, x0 + w0, y0 + h0], fill=_colour(r.uniform(0, 255, 3)))
    bg.paste(face, (0, 0), face)
    img = bg

    if r.random() < NUISANCE["occlusion_probability"]:
        od = ImageDraw.Draw(img)
        kind = r.random()
        oc = _colour(r.uniform(0, 80, 3) if kind < 0.5 else r.uniform(0, 255, 3))
        if kind < 0.5:  # sunglasses-like band across the eyes
            y = size * (0.45 + r.uniform(-0.06, 0.02))
            od.rectangle([size * 0.25, y - size * 0.05, size * 0.75, y + size * 0.05], fill=oc)
        else:  # a block (hand, microphone) over a random part of the face
            x0, y0 = r.uniform(0.2, 0.7, 2) * size
            w0, h0 = r.uniform(0.12, 0.3, 2) * size
            od.rectangle([x0, y0, x0 + w0, y0 + h0], fill=oc)

    if r.random() < NUISANCE["blur_probability"]:
        img = img.filter(ImageFilter.GaussianBlur(r.uniform(*NUISANCE["blur_radius"])))

    # Lighting and noise in float, vectorised.
    x = np.array(img, dtype=np.float32)
    gain = r.uniform(*NUISANCE["gain"])
    direction = r.uniform(0, 2 * math.pi)
    grid = (np.arange(size, dtype=np.float32) - np.float32(c)) / np.float32(c)
    strength = NUISANCE["gradient"] * r.uniform(0, 1)
    ramp = np.float32(math.cos(direction) * strength) * grid[None, :] + np.float32(math.sin(direction) * strength) * grid[:, None]
    light = np.float32(gain) * (1.0 + ramp)
    tint = r.uniform(0.92, 1.08, 3).astype(np.float32)  # white balance
    x *= light[:, :, None]
    x *= tint
    sigma = np.float32(r.uniform(*NUISANCE["noise_sigma"]))
    oy, ox = r.integers(0, size, 2)
    x += _noise_bank(size)[oy : oy + size, ox : ox + size] * sigma
    out = Image.fromarray(np.clip(x + 0.5, 0, 255).astype(np.uint8))
    buf = io.BytesIO()
    out.save(buf, format="JPEG", quality=NUISANCE["jpeg_quality"])
    return buf.getvalue()


_NOISE = {}


def _noise_bank(size):
    # Drawing fresh Gaussian noise dominated the cost of an image; a fixed bank twice the image
    # size, read at a random offset per image, is as good for a nuisance and deterministic.
    if size not in _NOISE:
        _NOISE[size] = _rng(0, 0x0153).standard_normal((2 * size, 2 * size, 3), dtype=np.float32)
    return _NOISE[size]


def _write_identity(job):
    """Worker: write all images of one identity; returns the number written."""
    seed, split, index, name, count, size, root = job
    p = _identity_params(seed, split, index)
    folder = os.path.join(root, name)
    os.makedirs(folder, exist_ok=True)
    for k in range(count):
        data = _render(p, seed, split, index, k, size)
        with open(os.path.join(folder, f"{name}_{k + 1:04d}.jpg"), "wb") as f:
            f.write(data)
    return count


# ---------------------------------------------------------------------------------------------
# counts and pairs


def long_tail_counts(num_identities, min_images, max_images, exponent=None, seed=0):
    """Images per identity following a power law over rank: ``n(r) = max · r^(-a)``, clipped to
    ``[min, max]``, shuffled over identities. ``exponent=None`` picks ``a`` so that the last rank
    reaches ``min`` (the whole range is used)."""
    if num_identities < 1:
        raise ValueError(f"num_identities must be >= 1, got {num_identities}")
    if not 1 <= min_images <= max_images:
        raise ValueError(f"need 1 <= min_images <= max_images, got {min_images} and {max_images}")
    ranks = np.arange(1, num_identities + 1, dtype=np.float64)
    if exponent is None:
        exponent = math.log(max_images / min_images) / math.log(num_identities) if num_identities > 1 else 0.0
    counts = np.clip(np.round(max_images * ranks ** (-exponent)), min_images, max_images).astype(int)
    _rng(seed, 0x7A11).shuffle(counts)
    return counts, float(exponent)


def make_pairs(names, counts, folds, pairs_per_fold, seed):
    """LFW-style pairs over held-out identities: identity-disjoint folds, each with
    ``pairs_per_fold`` matched then ``pairs_per_fold`` mismatched pairs, no repeated pair.
    Returns a list (per fold) of (matched, mismatched) lists of tuples with 1-based numbers."""
    r = _rng(seed, 0x9A125)
    order = r.permutation(len(names))
    groups = np.array_split(order, folds)
    result = []
    for f, group in enumerate(groups):
        if len(group) < 2:
            raise ValueError(
                f"fold {f} has {len(group)} held-out identities; mismatched pairs need >= 2 "
                f"(num_test_identities={len(names)} is too small for folds={folds})"
            )
        candidates = [(names[i], a, b) for i in group for a in range(1, counts[i] + 1) for b in range(a + 1, counts[i] + 1)]
        if len(candidates) < pairs_per_fold:
            raise ValueError(
                f"fold {f} allows only {len(candidates)} distinct matched pairs, {pairs_per_fold} "
                "requested: raise num_test_identities or test_images_per_identity, or lower pairs_per_fold"
            )
        pick = r.choice(len(candidates), size=pairs_per_fold, replace=False)
        matched = [candidates[i] for i in sorted(pick)]
        mismatched, seen = [], set()
        limit = 50 * pairs_per_fold + 1000
        while len(mismatched) < pairs_per_fold:
            limit -= 1
            if limit < 0:
                raise ValueError(f"fold {f}: could not draw {pairs_per_fold} distinct mismatched pairs")
            i, j = r.choice(group, size=2, replace=False)
            a, b = int(r.integers(1, counts[i] + 1)), int(r.integers(1, counts[j] + 1))
            key = (min((names[i], a), (names[j], b)), max((names[i], a), (names[j], b)))
            if key in seen:
                continue
            seen.add(key)
            mismatched.append((names[i], a, names[j], b))
        mismatched.sort()
        result.append((matched, mismatched))
    return result


def _write_pairs(path, pairs, pairs_per_fold):
    lines = [f"{len(pairs)}\t{pairs_per_fold}"]
    for matched, mismatched in pairs:
        lines += [f"{n}\t{a}\t{b}" for n, a, b in matched]
        lines += [f"{n1}\t{a}\t{n2}\t{b}" for n1, a, n2, b in mismatched]
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


# ---------------------------------------------------------------------------------------------
# public API


def generate_synthetic(
    out_dir,
    num_identities=200,
    num_test_identities=100,
    image_size=112,
    seed=0,
    min_images=4,
    max_images=60,
    tail_exponent=None,
    test_images_per_identity=10,
    folds=10,
    pairs_per_fold=300,
    workers=1,
    overwrite=False,
):
    """Write the synthetic data set to ``out_dir`` (layout in the module docstring) and return
    the ``info.json`` content as a dict.

    ``num_identities`` training identities get ``min_images..max_images`` images each on a power
    law (``tail_exponent``, default: spans the range); ``num_test_identities`` held-out
    identities get ``test_images_per_identity`` images each, and ``pairs.txt`` has ``folds``
    folds of ``pairs_per_fold`` matched + ``pairs_per_fold`` mismatched pairs (0 folds: no
    pairs file). ``workers`` processes draw in parallel (0: one per CPU); the bytes do not
    depend on it.
    """
    if image_size not in (112, 160) and not (isinstance(image_size, int) and 32 <= image_size <= 512):
        raise ValueError(f"image_size must be an int in [32, 512] (112 or 160 for the backbones), got {image_size!r}")
    if num_test_identities < 0 or test_images_per_identity < 1:
        raise ValueError(
            f"num_test_identities must be >= 0 and test_images_per_identity >= 1, got "
            f"{num_test_identities} and {test_images_per_identity}"
        )
    if folds < 0 or pairs_per_fold < 0:
        raise ValueError(f"folds and pairs_per_fold must be >= 0, got {folds} and {pairs_per_fold}")
    out_dir = os.fspath(out_dir)
    if os.path.exists(out_dir) and os.listdir(out_dir) and not overwrite:
        raise FileExistsError(f"output directory {out_dir!r} is not empty (pass overwrite=True / --overwrite)")
    start = time.perf_counter()
    train_counts, exponent = long_tail_counts(num_identities, min_images, max_images, tail_exponent, seed)
    train_names = [f"id_{i:05d}" for i in range(num_identities)]
    test_names = [f"heldout_{i:05d}" for i in range(num_test_identities)]
    test_counts = [test_images_per_identity] * num_test_identities

    pairs = None
    if num_test_identities and folds and pairs_per_fold:
        # Drawn first: an impossible pairs request fails before any image is written.
        pairs = make_pairs(test_names, test_counts, folds, pairs_per_fold, seed)

    train_root, test_root = os.path.join(out_dir, "train"), os.path.join(out_dir, "test")
    os.makedirs(train_root, exist_ok=True)
    os.makedirs(test_root, exist_ok=True)
    jobs = [(seed, _TRAIN, i, n, int(c), image_size, train_root) for i, (n, c) in enumerate(zip(train_names, train_counts))]
    jobs += [(seed, _TEST, i, n, int(c), image_size, test_root) for i, (n, c) in enumerate(zip(test_names, test_counts))]
    # Largest first, so the pool's tail is short.
    jobs.sort(key=lambda j: -j[4])
    workers = (os.cpu_count() or 1) if workers in (0, None) else int(workers)
    if workers > 1 and len(jobs) > 1:
        # spawn: the caller may have started threads (TensorFlow), which fork does not survive.
        ctx = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=ctx) as pool:
            total = sum(pool.map(_write_identity, jobs, chunksize=max(1, len(jobs) // (8 * workers))))
    else:
        total = sum(_write_identity(j) for j in jobs)

    if pairs is not None:
        _write_pairs(os.path.join(test_root, "pairs.txt"), pairs, pairs_per_fold)

    info = {
        "generator": "tfface.data.synthetic",
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "image_size": image_size,
        "train": {
            "identities": num_identities,
            "images": int(np.sum(train_counts)),
            "images_per_identity": {
                "min": int(np.min(train_counts)),
                "max": int(np.max(train_counts)),
                "mean": float(np.mean(train_counts)),
                "median": float(np.median(train_counts)),
            },
            "min_images": min_images,
            "max_images": max_images,
            "tail_exponent": exponent,
        },
        "test": {
            "identities": num_test_identities,
            "images": int(np.sum(test_counts)) if test_counts else 0,
            "images_per_identity": test_images_per_identity,
            "pairs": None if pairs is None else {"file": "test/pairs.txt", "folds": folds, "pairs_per_fold": pairs_per_fold},
        },
        "nuisance": NUISANCE,
        "note": "synthetic face-like identities: exercises the whole system, not a benchmark of real faces",
    }
    with open(os.path.join(out_dir, "info.json"), "w", encoding="utf-8") as f:
        json.dump(info, f, indent=2, sort_keys=True)
    info["elapsed_s"] = time.perf_counter() - start
    info["written"] = total
    return info
