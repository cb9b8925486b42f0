"""Pure loss functions of tfface (TensorFlow ops, no state).

Every function here is a transcription of one paper formula; the classes in
``tfface.losses`` only wire arguments, state and reduction to them. Conventions:

* ``labels``: int class indices ``(B,)``; ``logits``: ``(B, C)``; ``embeddings``: ``(B, D)``.
* Functions named *per sample* return ``(B,)``; the others return a scalar for the batch.
* All maths is done in float32 (inputs under ``mixed_float16`` are cast up), because squared
  distances of un-normalised 512-d features (MML's margin is 280) lose too much in float16.
* Nothing here gathers across replicas: the classes pass the global batch when they run under
  ``tf.distribute`` (see ``tfface.replica``, the one module of cross-replica helpers).

Shapes are static-friendly (no ``tf.unique``): class-level quantities are computed per sample
through the ``(B, B)`` same-class matrix, so the functions also compile under XLA.

The centre maths the ``ClassCentres`` layer shares with the losses (label checks, centre rows,
the eq. 14–15 update) is public in ``tfface.layers.centre_ops`` and used from there.
"""

import tensorflow as tf

from tfface.layers.centre_ops import (
    as_float,
    centre_rows,
    centre_table,
    check_labels,
    flat_labels,
    num_classes,
    same_class,
    updated_rows,
)

# A distance this small is treated as zero where a division or a norm would blow up.
_EPS = 1e-12


def _squared_distances(a, b):
    """``(Na, Nb)`` squared Euclidean distances, clipped at 0 against round-off."""
    aa = tf.reduce_sum(tf.square(a), axis=1)[:, None]
    bb = tf.reduce_sum(tf.square(b), axis=1)[None, :]
    return tf.maximum(aa + bb - 2.0 * tf.matmul(a, b, transpose_b=True), 0.0)


# ---------------------------------------------------------------------------------------------
# mining losses (over logits or per-sample losses)


def _logit_classes(logits):
    return logits.shape[-1] if logits.shape[-1] is not None else tf.shape(logits)[-1]


def sparse_cross_entropy(labels, logits):
    """Per-sample softmax cross-entropy from logits (labels checked: on GPU an out-of-range
    label gives NaN instead of an error)."""
    logits = as_float(logits)
    labels = check_labels(labels, _logit_classes(logits), "sparse_cross_entropy")
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)


def hard_mining(per_sample, alpha=1.5, beta=1.1, A=35.0, B=0.75, form="algorithm1"):
    """Hard-Mining loss of a per-sample loss ``L`` (Hard-Mining paper, §II-B/C).

    ``form="algorithm1"`` (default) is the paper's Algorithm 1: ``x = β·L``,
    ``out = α·x·σ(A·(x − B))``; with α=1.5, β=1.1, A=35, B=0.75 it crosses the plain loss near
    p = 0.5 (Fig. 1). ``form="eq2"`` is Eq. 2/(3): ``out = α·L·σ_AB(β·L) = α·L·σ(A·(β·L − B))``,
    which is Algorithm 1 divided by β.
    """
    loss = as_float(per_sample)
    x = beta * loss
    gate = tf.sigmoid(A * (x - B))
    if form == "algorithm1":
        return alpha * x * gate
    if form == "eq2":
        return alpha * loss * gate
    raise ValueError(f"hard_mining: form must be 'algorithm1' or 'eq2', got {form!r}")


def focal(labels, logits, gamma=2.0):
    """Per-sample focal softmax loss ``−(1 − p_y)^γ · log p_y`` (F-Softmax of MV-Softmax, Eq. 2)."""
    logits = as_float(logits)
    labels = check_labels(labels, _logit_classes(logits), "focal")
    log_p = tf.gather(tf.nn.log_softmax(logits, axis=-1), labels, axis=1, batch_dims=1)
    # 1 − exp(log p) loses nothing near p=1 with expm1.
    one_minus_p = tf.maximum(-tf.math.expm1(log_p), 0.0)
    # d/dx x^γ is infinite at x = 0 for γ < 1 (a confident sample): the double where keeps the
    # gradient finite (the factor is 0 there, and so is log p).
    positive = one_minus_p > 0
    weight = tf.where(positive, tf.pow(tf.where(positive, one_minus_p, 1.0), gamma), 0.0)
    return -weight * log_p


def ohem(per_sample, keep_ratio=0.9):
    """HM-Softmax (online hard example mining): the mean of the ``⌈keep_ratio·B⌉`` largest
    per-sample losses; the others get no gradient (MV-Softmax paper keeps 90 %)."""
    if not 0.0 < keep_ratio <= 1.0:
        raise ValueError(f"ohem: keep_ratio must be in (0, 1], got {keep_ratio}")
    loss = tf.reshape(as_float(per_sample), [-1])
    n = tf.shape(loss)[0]
    k = tf.cast(tf.math.ceil(keep_ratio * tf.cast(n, tf.float64)), tf.int32)
    k = tf.minimum(tf.maximum(k, 1), n)
    top, _ = tf.math.top_k(loss, k=k, sorted=False)
    return tf.math.divide_no_nan(tf.reduce_sum(top), tf.cast(k, tf.float32))


# ---------------------------------------------------------------------------------------------
# centre-based losses (MML paper)


def centre_loss(centres, embeddings, labels):
    """Per-sample centre loss ``½‖f_i − c_{y_i}‖²`` (MML paper Eq. 2, Wen et al.).

    ``centres`` are the values *before* this step's update; no gradient reaches them (they are
    moved by ``centre_update``, not by the optimizer).
    """
    centres = centre_table(centres)
    labels = check_labels(labels, num_classes(centres), "centre_loss")
    diff = as_float(embeddings) - centre_rows(centres, labels)
    return 0.5 * tf.reduce_sum(tf.square(diff), axis=1)


def centre_update(centres, embeddings, labels, alpha=0.5):
    """All centres after one step of MML eqs. 14–15, ``(C, D)``; classes absent from the batch
    keep their value. The gradient flows to ``embeddings`` (not to the old centres)."""
    centres = centre_table(centres)
    labels = check_labels(labels, num_classes(centres), "centre_update")
    rows = updated_rows(centres, as_float(embeddings), labels, alpha)
    # Samples of one class carry identical rows, so duplicate indices write the same value.
    return tf.tensor_scatter_nd_update(tf.stop_gradient(as_float(centres)), labels[:, None], rows)


def minimum_margin_loss(centres, embeddings, labels, alpha=0.5, margin=280.0):
    """Minimum Margin Loss (MML paper Eq. 13 as its text describes it): the sum over unordered
    pairs of distinct classes present in the batch of ``max(M − ‖c'_a − c'_b‖², 0)``, where
    ``c'`` are the centres after this step's eq. 14–15 update (Algorithm 1, step 3), so the
    gradient reaches the features through the update. One class in the batch gives 0.

    The paper prints ``max(‖c_i − c_j‖² − M, 0)`` but penalises pairs *closer* than ``M``.
    """
    centres = centre_table(centres)
    labels = check_labels(labels, num_classes(centres), "minimum_margin_loss")
    rows = updated_rows(centres, as_float(embeddings), labels, alpha)
    same = same_class(labels)
    counts = tf.reduce_sum(same, axis=1)
    hinge = tf.nn.relu(margin - _squared_distances(rows, rows))
    # Sample pair (i, j) of classes (a, b) stands for 1/(n_a·n_b) of the class pair; the 1/2
    # counts each unordered pair once; same-class pairs (diagonal included) are masked out.
    weight = (1.0 - same) / (counts[:, None] * counts[None, :])
    return 0.5 * tf.reduce_sum(weight * hinge)


def range_loss(embeddings, labels, k, margin, alpha=1.0, beta=1.0):
    """Range Loss (Zhang et al. 2017, as MML paper eqs. 8–11): ``α·intra + β·inter``.

    intra = Σ over classes in the batch of the harmonic mean ``k / Σ_j 1/D_j`` of its ``k``
    largest within-class pair distances (fewer when the class has fewer pairs; a class with a
    single sample contributes 0); inter = ``max(M − min_{a≠b} ‖x̄_a − x̄_b‖², 0)`` over the
    batch-mean class centres (0 with a single class). Distances are squared Euclidean.
    """
    if int(k) < 1:
        raise ValueError(f"range_loss: k must be >= 1, got {k}")
    k = int(k)
    f = as_float(embeddings)
    labels = flat_labels(labels)
    n = tf.shape(f)[0]
    same = same_class(labels)
    dist = _squared_distances(f, f)
    upper = tf.linalg.band_part(tf.ones_like(same), 0, -1) - tf.eye(n)  # pairs a < b
    pair = same * upper
    missing = tf.constant(-1.0, tf.float32)  # marks "no pair here": real distances are >= 0
    kk = tf.minimum(k, n)
    # Per row a: its kk largest within-class distances to later samples ...
    row_top, _ = tf.math.top_k(tf.where(pair > 0, dist, missing), k=kk)  # (B, kk)
    # ... then per class (seen from each sample i), the kk largest of its members' rows.
    member_rows = tf.where(same[:, :, None] > 0, row_top[None, :, :], missing)  # (B, B, kk)
    class_top, _ = tf.math.top_k(tf.reshape(member_rows, [n, -1]), k=kk)  # (B, kk)
    valid = tf.cast(class_top >= 0.0, tf.float32)
    inv = valid / (tf.maximum(class_top, 0.0) + _EPS)
    harmonic = tf.math.divide_no_nan(tf.reduce_sum(valid, axis=1), tf.reduce_sum(inv, axis=1))
    # Count each class once: at its first sample in the batch.
    earlier = tf.linalg.band_part(tf.ones_like(same), -1, 0) - tf.eye(n)  # j < i
    first = tf.cast(tf.reduce_sum(same * earlier, axis=1) == 0, tf.float32)
    intra = tf.reduce_sum(first * harmonic)

    counts = tf.reduce_sum(same, axis=1, keepdims=True)
    means = tf.matmul(same, f) / counts  # batch-mean centre of each sample's class
    centre_dist = _squared_distances(means, means)
    big = tf.reduce_max(centre_dist) + 1.0
    nearest = tf.reduce_min(tf.where(same > 0, big + tf.zeros_like(centre_dist), centre_dist))
    has_two_classes = tf.reduce_any(same < 1)
    inter = tf.where(has_two_classes, tf.nn.relu(margin - nearest), 0.0)
    return alpha * intra + beta * inter


def marginal_loss(embeddings, labels, threshold=1.2, error_margin=0.3):
    """Marginal Loss (Deng et al. 2017; MML paper Eq. 6) on L2-normalised features:
    mean over the ``N² − N`` ordered pairs ``i ≠ j`` of ``max(ξ − y_ij·(θ − ‖f̂_i − f̂_j‖²), 0)``
    with ``y_ij = +1`` for the same class and ``−1`` otherwise. One sample gives 0."""
    f = as_float(embeddings)
    labels = flat_labels(labels)
    # Normalise with a floor on the norm so a zero feature has a finite gradient.
    f = f * tf.math.rsqrt(tf.maximum(tf.reduce_sum(tf.square(f), axis=1, keepdims=True), _EPS))
    n = tf.shape(f)[0]
    dist = _squared_distances(f, f)
    y = 2.0 * same_class(labels) - 1.0
    off_diagonal = 1.0 - tf.eye(n)
    hinge = tf.nn.relu(error_margin - y * (threshold - dist)) * off_diagonal
    pairs = tf.cast(n * n - n, tf.float32)
    return tf.math.divide_no_nan(tf.reduce_sum(hinge), pairs)


__all__ = [
    "centre_loss",
    "centre_update",
    "check_labels",
    "focal",
    "hard_mining",
    "marginal_loss",
    "minimum_margin_loss",
    "ohem",
    "range_loss",
    "sparse_cross_entropy",
]
