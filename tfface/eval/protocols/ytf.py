"""YouTube Faces (Wolf et al., CVPR 2011): ``ytf``, 5,000 video pairs in 10 splits.

Layout as published (https://www.cs.tau.ac.il/~wolf/ytfaces/)::

    splits.txt                        (or meta_data/splits.txt) header, then
                                      "split, pair, person/video, person/video, is same"
    aligned_images_DB/<person>/<video>/aligned_detect_<video>.<frame>.jpg
    frame_images_DB/<person>/<video>/<video>.<frame>.jpg

``--data`` is that folder; read by :func:`tfface.data.readers.read_ytf_splits` (frames in
natural order). The frame folder is ``frames=`` (default: ``aligned_images_DB/`` if present,
else ``frame_images_DB/``) or ``images=`` (any folder with the same ``person/video/`` layout,
e.g. an aligned copy).

**Protocol**: one feature per video, the mean of its frames' embeddings
(:func:`tfface.eval.templates.video_features`; ``normalize_first=True`` L2-normalises each frame
first), compared with the cosine; 10-fold accuracy over the **10 published splits** (threshold
chosen on the other nine), ``tar_at_far``, ``auc``, ``eer`` over all pairs.

**Frame cap**: ``max_frames=N`` keeps at most N frames per video, a random subset drawn with
``seed`` (sorted back into frame order, the same for a video in every pair; videos are drawn in
sorted path order so the subset does not depend on the pair order). ``None`` (default) uses
every frame (~620,000 frames for the 3,425 videos).

**Images**: ``frame_images_DB`` holds whole video frames and ``aligned_images_DB`` YTF's own
loosely aligned crops (face at the centre with much background), neither of them ArcFace
crops: align them first (``tfface align DATA/aligned_images_DB DST --split test``, then
``images=DST``) or use ``aligned=False`` to align in memory (slow for the full set).
"""
import os

import numpy as np

from tfface import registry
from tfface.eval.protocols.base import Protocol
from tfface.eval.protocols.pairset_common import embed_paths
from tfface.eval.verification import DEFAULT_FAR

__all__ = ["YTF", "cap_frames"]

FRAME_DIRS = ("aligned_images_DB", "frame_images_DB")
SPLITS_FILES = ("splits.txt", os.path.join("meta_data", "splits.txt"))


def cap_frames(videos, max_frames, seed=0):
    """``videos`` (``read_ytf_splits``' list of ``(frames_a, frames_b)``) with every video cut to
    at most ``max_frames`` frames: a seeded random subset, kept in frame order, identical for a
    video wherever it appears. ``max_frames=None`` returns ``videos`` unchanged."""
    if max_frames is None:
        return videos
    if not isinstance(max_frames, (int, np.integer)) or max_frames < 1:
        raise ValueError(f"max_frames must be a positive integer or None, got {max_frames!r}")
    distinct = sorted({tuple(v) for pair in videos for v in pair})
    rng = np.random.default_rng(seed)
    capped = {}
    for video in distinct:
        if len(video) <= max_frames:
            capped[video] = list(video)
        else:
            keep = np.sort(rng.choice(len(video), size=max_frames, replace=False))
            capped[video] = [video[i] for i in keep]
    return [(capped[tuple(a)], capped[tuple(b)]) for a, b in videos]


@registry.register("protocol", "ytf", inject=("data",))
class YTF(Protocol):
    """YouTube Faces video-pair verification.

    Args:
        data: the YTF folder (holding ``splits.txt`` and the frame folders).
        splits: the split list (default: ``splits.txt`` or ``meta_data/splits.txt`` in
            ``data``).
        frames: the frame folder's name in ``data`` (default ``aligned_images_DB``, else
            ``frame_images_DB``).
        images: a frame root to use instead (same ``person/video/`` layout): an aligned copy.
        max_frames: at most this many frames per video (seeded random subset), or None.
        seed: the seed of the frame subset.
        normalize_first: L2-normalise each frame's feature before the mean.
        aligned, align_mode, align_size: as the other pair protocols.
        far: the FARs of ``tar_at_far``.
        metric: ``"cosine"`` or ``"euclidean"``.
    """

    task = "verification"

    def __init__(self, data, splits=None, frames=None, images=None, max_frames=None, seed=0,
                 normalize_first=False, aligned=True, align_mode="arcface", align_size=112,
                 far=DEFAULT_FAR, metric="cosine"):
        super().__init__(data)
        data = os.fspath(data)
        candidates = (splits,) if splits is not None else SPLITS_FILES
        self.splits_txt = next((os.path.join(data, c) for c in candidates
                                if os.path.isfile(os.path.join(data, c))), None)
        if self.splits_txt is None:
            raise FileNotFoundError(f"ytf: no {' or '.join(candidates)} in {data}; expected "
                                    "YouTube Faces' splits.txt")
        if images is not None:
            self.frames_root = os.fspath(images)
        else:
            names = (frames,) if frames is not None else FRAME_DIRS
            self.frames_root = next((os.path.join(data, n) for n in names
                                     if os.path.isdir(os.path.join(data, n))), None)
            if self.frames_root is None:
                raise FileNotFoundError(f"ytf: no {' or '.join(names)} folder in {data}; "
                                        "expected YouTube Faces' frame folders (or images=)")
        if max_frames is not None and (not isinstance(max_frames, (int, np.integer))
                                       or max_frames < 1):
            raise ValueError(f"ytf: max_frames must be a positive integer or None, got "
                             f"{max_frames!r}")
        self.max_frames = max_frames
        self.seed = seed
        self.normalize_first = bool(normalize_first)
        self.aligned = bool(aligned)
        self.align_mode = align_mode
        self.align_size = align_size
        self.far = tuple(far)
        self.metric = metric

    def read(self):
        """``(videos, issame, folds)`` with the frame cap applied."""
        from tfface.data.readers import read_ytf_splits

        videos, issame, folds = read_ytf_splits(self.splits_txt, self.frames_root)
        return cap_frames(videos, self.max_frames, self.seed), issame, folds

    def evaluate(self, embed, progress=None):
        from tfface.eval.protocols.lfw import pair_metrics
        from tfface.eval.templates import video_features, video_pairs_to_templates

        videos, issame, folds = self.read()
        frames, video_ids, pairs = video_pairs_to_templates(videos)
        key = "ytf/frames"
        if self.max_frames is not None:
            key += f"@max{self.max_frames}s{self.seed}"
        if progress:
            progress(f"ytf: {len(pairs)} pairs, {int(video_ids.max()) + 1} videos, "
                     f"{len(frames)} frames")
        emb = embed_paths(frames, embed, key, aligned=self.aligned, align_mode=self.align_mode,
                          align_size=self.align_size, progress=progress)
        _, feats = video_features(emb, video_ids, normalize_first=self.normalize_first)
        # video_pairs_to_templates numbers the videos 0..V-1, so feats[i] is video i.
        return pair_metrics(feats[pairs[:, 0]], feats[pairs[:, 1]], issame, folds=folds,
                            far=self.far, metric=self.metric)
