"""Set-based verification: a template (IJB) or a video (YTF) is represented by the mean of its
image features, then compared like a single image with :func:`tfface.eval.verify`.

* IJB-B/C: the features of the images of one *media* (a still, or the frames of one video) are
  averaged first, then the media means are averaged, so a 200-frame video weighs as much as a
  single photo.
* YTF: a video's feature is the mean of its frames' features (``media_ids=None``).

Features are averaged as given (insightface keeps the norms of flip-summed features, which
weights confident images more); ``normalize_first=True`` L2-normalises every image feature
before averaging instead. The cosine or normalised Euclidean comparison of the means is then done
by ``verify``.
"""
import numpy as np

from tfface.eval.verification import DEFAULT_FAR, l2_normalize, verify


def template_features(features, template_ids, media_ids=None, normalize_first=False):
    """Mean feature per template: ``(ids, feats)`` with ``ids`` the sorted distinct template ids
    and ``feats[i]`` the template ``ids[i]``'s feature. With ``media_ids`` (one per image), the
    mean over each (template, media) group is taken first, then the mean of those."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2:
        raise ValueError(f"features must be a 2-D array (images, dim), got shape {features.shape}")
    template_ids = np.asarray(template_ids)
    if template_ids.shape != (features.shape[0],):
        raise ValueError(f"template_ids must hold one id per image ({features.shape[0]}), got "
                         f"shape {template_ids.shape}")
    if normalize_first:
        features = l2_normalize(features)
    ids, t_index = np.unique(template_ids, return_inverse=True)
    if media_ids is None:
        group = t_index
        group_template = np.arange(ids.shape[0])
    else:
        media_ids = np.asarray(media_ids)
        if media_ids.shape != template_ids.shape:
            raise ValueError(f"media_ids must hold one id per image ({features.shape[0]}), got "
                             f"shape {media_ids.shape}")
        _, m_index = np.unique(media_ids, return_inverse=True)
        pairs, group = np.unique(np.stack([t_index, m_index], 1), axis=0, return_inverse=True)
        group = group.ravel()
        group_template = pairs[:, 0]
    sums = np.zeros((group_template.shape[0], features.shape[1]))
    np.add.at(sums, group, features)
    counts = np.bincount(group, minlength=group_template.shape[0])
    group_means = sums / counts[:, None]
    t_sums = np.zeros((ids.shape[0], features.shape[1]))
    np.add.at(t_sums, group_template, group_means)
    t_counts = np.bincount(group_template, minlength=ids.shape[0])
    return ids, t_sums / t_counts[:, None]


def video_features(frame_features, video_ids, normalize_first=False):
    """YTF-style: the mean of each video's frame features; returns ``(video ids, features)``."""
    return template_features(frame_features, video_ids, None, normalize_first=normalize_first)


def verify_templates(features, template_ids, pairs, issame, media_ids=None,
                     normalize_first=False, metric="cosine", folds=10, far=DEFAULT_FAR):
    """Verification of template pairs: ``pairs`` is a sequence of ``(template_a, template_b)``
    ids; the result is :func:`verify`'s on the template mean features. Use ``folds=0`` for the
    IJB protocol (TAR@FAR over all pairs) and the split ids of ``read_ytf_splits`` for YTF."""
    ids, feats = template_features(features, template_ids, media_ids, normalize_first)
    pairs = np.asarray(pairs)
    if pairs.ndim != 2 or pairs.shape[1] != 2:
        raise ValueError(f"pairs must be a sequence of (template_a, template_b), got shape "
                         f"{pairs.shape}")
    pos = np.searchsorted(ids, pairs)
    pos = np.clip(pos, 0, ids.shape[0] - 1)
    unknown = ids[pos] != pairs
    if unknown.any():
        bad = pairs[unknown][0].tolist()
        raise ValueError(f"pairs refer to template {bad!r}, which has no image in template_ids")
    return verify(feats[pos[:, 0]], feats[pos[:, 1]], issame, metric=metric, folds=folds, far=far)


def video_pairs_to_templates(videos):
    """Flatten video pairs (``read_ytf_splits``' ``videos``: a list of ``(frames_a, frames_b)``
    frame-path lists) into one frame list for a single extraction pass.

    Returns ``(frames, video_ids, pairs)``: every distinct video's frames once, the video index of
    each frame, and the ``(index_a, index_b)`` video pairs, ready for
    ``verify_templates(extract_embeddings(model, frames), video_ids, pairs, issame)``."""
    index, frames, video_ids, pairs = {}, [], [], []
    for i, pair in enumerate(videos):
        if len(pair) != 2:
            raise ValueError(f"videos[{i}] must be a pair (frames_a, frames_b)")
        ids = []
        for video in pair:
            key = tuple(video)
            if not key:
                raise ValueError(f"videos[{i}] holds a video without frames")
            if key not in index:
                index[key] = len(index)
                frames.extend(key)
                video_ids.extend([index[key]] * len(key))
            ids.append(index[key])
        pairs.append(tuple(ids))
    return frames, np.asarray(video_ids), np.asarray(pairs)
