"""What the pair-list protocols (``cfp_*``, ``calfw``, ``cplfw``, ``sllfw``, ``rfw_*``, ``ytf``)
share: embedding a list of image paths once (each distinct image once), optionally aligning the
images on the fly, and the ``.bin`` branch.

**Images.** The published CFP, RFW, SLLFW (LFW) and YTF images are *not* aligned crops. The
protocols feed the image paths to ``embed`` as they are (``aligned=True``, the default), which
assumes the user has aligned the set first and pointed ``images=`` at the copy::

    tfface align CFP/Data/Images CFP_aligned --split test
    tfface eval --model M --protocol cfp_fp --data CFP --set-option cfp_fp.images=CFP_aligned

``aligned=False`` aligns every image in memory before embedding instead
(:class:`tfface.align.FaceAligner`, MTCNN + the 5-point ArcFace template, ``align_size``; an
image without a detected face falls back to a centre crop, as ``tfface align --split test``).
It needs TensorFlow for MTCNN and holds the aligned set in memory: fine for CALFW-sized sets,
use ``tfface align`` for YTF.
"""
import os

import numpy as np

__all__ = ["embed_paths", "pair_result", "bin_path"]


def _align_images(paths, mode, size, progress=None, key=""):
    # Lazy: MTCNN (and TensorFlow) only when on-the-fly alignment is asked for.
    from tfface.align import FaceAligner
    from tfface.data.images import read_image

    aligner = FaceAligner(mode=mode, size=size)
    out = []
    for i, path in enumerate(paths):
        face = aligner.align(read_image(path), fallback="centre")
        out.append(face.image)
        if progress and (i + 1) % 1000 == 0:
            progress(f"{key}: aligned {i + 1}/{len(paths)} images")
    return np.stack(out) if out else np.zeros((0, 1, 1, 3), np.uint8)


def embed_paths(paths, embed, key, aligned=True, align_mode="arcface", align_size=112,
                progress=None):
    """Embeddings of ``paths`` (one row per entry), each distinct path embedded once under
    ``key`` (``key + "@mtcnn"`` when ``aligned=False``: the images differ)."""
    unique, inverse = np.unique(np.asarray(paths, dtype=object).astype(str), return_inverse=True)
    unique = unique.tolist()
    if aligned:
        images = unique
    else:
        if progress:
            progress(f"{key}: aligning {len(unique)} images (MTCNN, {align_mode} {align_size})")
        images = _align_images(unique, align_mode, align_size, progress, key)
        key = f"{key}@mtcnn"
    if progress:
        progress(f"{key}: embedding {len(unique)} images")
    emb = np.asarray(embed(images, key))
    if emb.ndim != 2 or emb.shape[0] != len(unique):
        raise ValueError(f"{key}: embed returned shape {emb.shape} for {len(unique)} images; "
                         "expected (images, dim)")
    return emb[inverse.ravel()]


def pair_result(paths, issame, folds, embed, key, far, metric="cosine", aligned=True,
                align_mode="arcface", align_size=112, progress=None):
    """Embed the 2·P ``paths`` and return the LFW-style metrics
    (:func:`tfface.eval.protocols.lfw.pair_metrics`) with ``folds`` the fold id of each pair."""
    from tfface.eval.protocols.lfw import pair_metrics

    emb = embed_paths(paths, embed, key, aligned=aligned, align_mode=align_mode,
                      align_size=align_size, progress=progress)
    return pair_metrics(emb[0::2], emb[1::2], issame, folds=np.asarray(folds), far=far,
                        metric=metric)


def bin_path(data, filename):
    """The insightface ``.bin`` to evaluate instead of the published layout, or None: ``data``
    itself when it is a ``.bin`` file, else ``data/filename`` when the folder holds it."""
    data = os.fspath(data)
    if os.path.isfile(data):
        if data.lower().endswith(".bin"):
            return data
        return None
    candidate = os.path.join(data, filename)
    return candidate if os.path.isfile(candidate) else None
