"""Partial FC: a sharded, sampled margin head for very many identities (An et al., "Partial FC:
Training 10 Million Identities on a Single Machine", ICCVW 2021; "Killing Two Birds with One
Stone", CVPR 2022).

What it does, per training step, on each of the R replicas of a ``tf.distribute`` strategy:

1. embeddings and labels of the global batch are all-gathered (``ReplicaContext.all_gather``,
   whose gradient sums the replicas' contributions back onto each replica's own samples);
2. the replica owns a contiguous shard of the class centres and samples ``ceil(rate·C_r)`` of
   them (never fewer than the global batch): every positive class of the global batch that falls
   in the shard, plus uniformly random others (stateless, keyed on the seed, the step and the
   replica);
3. it computes the wrapped head's margin logits over its sampled columns. The target cosine of a
   sample whose class lives on another shard is obtained by an all-reduce and given to the head
   as an extra "phantom" column used as that sample's target: heads whose negatives depend on
   the target (MV-Softmax's mask, CurricularFace's hard negatives and its ``t``) then see the
   same values as the unsharded head, and the phantom column is dropped afterwards;
4. the softmax normaliser (row max and sum of exponentials) is all-reduced, so the loss is the
   full softmax cross-entropy over the sampled classes of all shards;
5. the gradient of the sampled rows updates only those rows of the shard and of its momentum
   (SGD with momentum, the papers' optimizer, applied by the layer itself).

With ``sample_rate=1.0`` every class is kept and the loss, gradients and updated weights equal
the unsharded head's.

Why per-device variables: a ``MirroredVariable`` holds the same value on every replica, and
Keras 3's ``ModelParallel`` does nothing on the TensorFlow backend. Of the alternatives,
``ON_READ`` variables cannot be trainable and save one aggregated value, and placing a
``(C, D)`` matrix on one device defeats the point. So the layer creates one plain
``tf.Variable`` per replica device, explicitly placed (bypassing the strategy's variable
creator): shard ``r`` and its momentum live on device ``r`` only, each replica reads its own
shard by its (static) replica id inside ``strategy.run``, and a ``tf.train.Checkpoint`` saves
them as separate variables ``shard_0 .. shard_{R-1}`` that restore to their owners. The optimizer
never sees these variables (a Keras optimizer would all-reduce their dense gradients, which is
the cost Partial FC avoids). PartialFC implements the heads' training hook
(``tfface.heads.base.TrainingHead``): ``training_loss`` returns the sampled rows as
``own_sources`` and a :class:`PartialFCSample` as its state, and ``apply_own_gradients`` updates
them, so ``tfface.FaceModel`` trains it with its one ordinary step.

Limitations: one worker (``MirroredStrategy`` or no strategy); a checkpoint restores onto the
same number of replicas; only SGD (with or without momentum/Nesterov) updates the shards.
"""
import dataclasses
import math
from typing import Any, Optional

import keras
import numpy as np
import tensorflow as tf
from tensorflow.python.ops import resource_variable_ops

from tfface import registry, replica
from tfface.heads import margins
from tfface.heads import partial_fc_ops as ops_
from tfface.heads.base import HeadLoss, MarginHead, TrainingHead


def _plain_variable_creator(next_creator, **kwargs):
    # Skip the strategy's creator (which would mirror the variable on every replica).
    for key in ("synchronization", "aggregation", "distribute_strategy", "experimental_enable_variable_lifting"):
        kwargs.pop(key, None)
    return resource_variable_ops.ResourceVariable(**kwargs)


@dataclasses.dataclass(frozen=True)
class PartialFCSample:
    """One replica's sampled classes in one step: what :meth:`PartialFC.train_loss` computed and
    :meth:`PartialFC.apply_gradients` needs.

    Attributes:
        replica: the (static) replica id, i.e. the shard.
        index: int32 ``(K,)`` sorted shard-local rows sampled this step; ``None`` when every row
            of the shard is kept (dense update).
        rows: float32 ``(K, D)``, the sampled rows as read for the loss (differentiate the loss
            with respect to them).
        bias: float32 ``(K,)``, the sampled biases (a ``Softmax`` head with bias), else ``None``.
        logits: float32 ``(B_global, K)``, the margin logits of the global batch over the
            sampled columns.
        mask: bool ``(B_global, K)``, True at each sample's target column when this shard owns
            its class.
    """

    replica: int
    index: Optional[Any]
    rows: Any
    bias: Optional[Any]
    logits: Any
    mask: Any


def sgd_settings(optimizer):
    """``(momentum, nesterov)`` of an SGD optimizer (through a LossScaleOptimizer); any other
    optimizer is refused with a clear error: the shards are updated by PartialFC itself."""
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    if not isinstance(inner, keras.optimizers.SGD):
        raise ValueError(
            "A FaceModel with a PartialFC head needs keras.optimizers.SGD (the papers' optimizer; "
            f"PartialFC updates its class shards with SGD-momentum itself), got {type(inner).__name__}"
        )
    return float(inner.momentum), bool(inner.nesterov)


@keras.saving.register_keras_serializable(package="tfface")
@registry.register("head_wrapper", "partial_fc", inject=("head",))
class PartialFC(TrainingHead, keras.layers.Layer):
    """Shard a margin head's class centres across replicas and sample a fraction of them.

    Args:
        head: any ``tfface.heads.MarginHead`` (its own kernel is not built; its state, such as
            CurricularFace's ``t``, is, and stays global).
        sample_rate: fraction of each shard's classes kept per step, in ``(0, 1]``; positives
            are always kept.
        seed: seed of the class sampling.
    """

    def __init__(self, head, sample_rate=0.1, seed=0, **kwargs):
        super().__init__(**kwargs)
        if isinstance(head, dict):
            head = keras.saving.deserialize_keras_object(head)
        if not isinstance(head, MarginHead):
            raise TypeError(f"PartialFC: head must be a tfface.heads.MarginHead, got {head!r}")
        if not 0.0 < float(sample_rate) <= 1.0:
            raise ValueError(f"PartialFC: sample_rate must be in (0, 1], got {sample_rate!r}")
        self.head = head
        self.sample_rate = float(sample_rate)
        self.seed = int(seed)
        self.num_classes = head.num_classes
        self.supports_jit = False
        self._num_shards = None

    # -- weights ------------------------------------------------------------------------------

    def build(self, embeddings_shape, labels_shape=None):
        if len(embeddings_shape) != 2 or embeddings_shape[-1] is None:
            raise ValueError(
                "PartialFC: embeddings must have shape (batch, embedding_dim), got "
                f"{tuple(embeddings_shape)}"
            )
        dim = int(embeddings_shape[-1])
        strategy = tf.distribute.get_strategy()
        if replica.multi_worker():
            raise ValueError(
                "PartialFC supports a single worker (MirroredStrategy or no strategy); got a "
                f"multi-worker {type(strategy).__name__}"
            )
        devices = list(strategy.extended.worker_devices) if strategy.num_replicas_in_sync > 1 else [None]
        self._num_shards = len(devices)
        self._bounds = ops_.shard_bounds(self.num_classes, self._num_shards)
        self._dim = dim
        # Softmax's bias is per class: it is sharded with the kernel instead of built by the head.
        uses_bias = bool(getattr(self.head, "use_bias", False))
        if not uses_bias:
            # The wrapped head keeps its state weights (t, iteration counter), not its kernel.
            self.head.build_state()
        self.head.built = True
        limit = math.sqrt(6.0 / (dim + self.num_classes))
        for r, (device, (start, size)) in enumerate(zip(devices, self._bounds)):
            with tf.variable_creator_scope(_plain_variable_creator), tf.device(device):
                # Glorot limits of the full (D, C) matrix: shards start as the unsharded kernel would.
                value = tf.random.stateless_uniform(
                    (size, dim), seed=[self.seed, r], minval=-limit, maxval=limit
                )
                setattr(self, f"shard_{r}", tf.Variable(value, name=f"shard_{r}"))
                setattr(
                    self,
                    f"shard_momentum_{r}",
                    tf.Variable(tf.zeros((size, dim)), trainable=False, name=f"shard_momentum_{r}"),
                )
                if uses_bias:
                    setattr(self, f"shard_bias_{r}", tf.Variable(tf.zeros((size,)), name=f"shard_bias_{r}"))
                    setattr(
                        self,
                        f"shard_bias_momentum_{r}",
                        tf.Variable(tf.zeros((size,)), trainable=False, name=f"shard_bias_momentum_{r}"),
                    )
        self._uses_bias = uses_bias

    @property
    def num_shards(self):
        return self._num_shards

    @property
    def shard_bounds(self):
        """``[(start, size)]`` of each shard's contiguous class range."""
        return list(self._bounds)

    def shard(self, r):
        return getattr(self, f"shard_{r}")

    @property
    def kernel(self):
        """The full ``(D, C)`` class matrix, concatenated from the shards (for inspection; this
        materialises all of it)."""
        return tf.transpose(tf.concat([tf.convert_to_tensor(self.shard(r)) for r in range(self._num_shards)], 0))

    def set_kernel(self, kernel, bias=None):
        """Assign a full ``(D, C)`` kernel (and ``(C,)`` bias) to the shards."""
        kernel = np.asarray(kernel, dtype="float32")
        for r, (start, size) in enumerate(self._bounds):
            self.shard(r).assign(kernel[:, start : start + size].T)
            if self._uses_bias and bias is not None:
                getattr(self, f"shard_bias_{r}").assign(np.asarray(bias, "float32")[start : start + size])

    # -- the step -------------------------------------------------------------------------------

    def train_loss(self, embeddings, labels, step, training=True):
        """This replica's share of the mean softmax cross-entropy over the global batch.

        Call inside ``strategy.run`` (or without a strategy). The shares of all replicas add up
        to the loss of the unsharded head on the global batch, and so do the gradients (do not
        divide this term by the number of replicas). ``step`` (the optimizer's iteration count)
        keys the sampling: the same step draws the same negatives. Returns ``(loss, sample)`` where
        ``sample`` is the :class:`PartialFCSample` that :meth:`apply_gradients` needs
        (differentiate the loss with respect to ``sample.rows`` and ``sample.bias``).
        """
        ctx = replica.replica_context()
        try:
            rid = replica.replica_id(ctx)
        except RuntimeError as err:
            raise RuntimeError(f"PartialFC: {err}") from None
        labels = self.head.validate_labels(labels, embeddings)
        embeddings = tf.cast(embeddings, tf.float32)
        emb = replica.all_gather(embeddings, ctx)
        lab = replica.all_gather(labels, ctx)
        global_batch = tf.shape(emb)[0]
        start, size = self._bounds[rid]
        replicas = 1 if ctx is None else ctx.num_replicas_in_sync
        local_batch = embeddings.shape[0]
        k = ops_.num_sampled(
            size, self.sample_rate, local_batch * replicas if local_batch is not None else global_batch
        )
        seed = tf.stack([tf.cast(self.seed, tf.int64), tf.cast(step, tf.int64) * self._num_shards + rid])
        index, position = ops_.sample_classes(lab - start, size, k, tf.cast(seed, tf.int32))
        full = isinstance(k, int) and k == size
        if full:
            # Every class kept: read the shard as it is (no gather copy, dense update).
            index = None
            rows = tf.convert_to_tensor(self.shard(rid))
            bias = tf.convert_to_tensor(getattr(self, f"shard_bias_{rid}")) if self._uses_bias else None
        else:
            rows = tf.gather(self.shard(rid), index)
            bias = tf.gather(getattr(self, f"shard_bias_{rid}"), index) if self._uses_bias else None
        sim = self._similarity(emb, rows, bias)
        owned = position >= 0
        num_cols = tf.shape(rows)[0]
        mask = tf.logical_and(
            tf.one_hot(tf.maximum(position, 0), num_cols, on_value=True, off_value=False),
            owned[:, None],
        )
        target = replica.all_reduce_sum(tf.reduce_sum(tf.where(mask, sim, 0.0), axis=1), ctx)
        # A phantom last column carries the global target similarity of the samples whose class
        # lives on another shard, so the head computes their target (and, for MV-Softmax and
        # CurricularFace, their hard-negative threshold and t) exactly as unsharded.
        extended = tf.concat([sim, target[:, None]], axis=1)
        head_labels = tf.where(owned, position, num_cols)
        logits = self.head.margin_logits_from_cosine(extended, emb, head_labels, training)
        logits = logits[:, :-1]
        per_sample = ops_.distributed_cross_entropy(logits, mask, ctx)
        loss = tf.reduce_sum(per_sample) / tf.cast(global_batch, tf.float32)
        return loss, PartialFCSample(replica=rid, index=index, rows=rows, bias=bias, logits=logits, mask=mask)

    def _similarity(self, emb, rows, bias):
        if self._uses_bias or not self.head.normalized:
            logits = tf.matmul(emb, rows, transpose_b=True)
            return logits + bias if bias is not None else logits
        return margins.cosine(emb, tf.transpose(rows))

    def apply_gradients(self, sample, grad_rows, grad_bias=None, learning_rate=0.1, momentum=0.0,
                        nesterov=False, weight_decay=0.0):
        """SGD(-momentum) update of this replica's sampled rows from the gradients with respect
        to ``sample.rows`` (and ``sample.bias``); call in the same replica context as
        :meth:`train_loss`. ``weight_decay`` (coupled L2) applies to the rows, not the biases."""
        rid = sample.replica
        index = sample.index
        slot = getattr(self, f"shard_momentum_{rid}") if momentum else None
        ops = [
            ops_.sparse_momentum_update(
                self.shard(rid), slot, index, grad_rows, learning_rate, momentum, nesterov, weight_decay
            )
        ]
        if self._uses_bias and grad_bias is not None:
            bslot = getattr(self, f"shard_bias_momentum_{rid}") if momentum else None
            ops.append(
                ops_.sparse_momentum_update(
                    getattr(self, f"shard_bias_{rid}"), bslot, index, grad_bias, learning_rate, momentum,
                    nesterov, 0.0,
                )
            )
        return tf.group(ops)

    @staticmethod
    def global_accuracy(sample):
        """Per-sample correctness over the sampled classes of all replicas, float32
        ``(B_global,)``: the target logit is at least every sampled logit of every shard."""
        ctx = replica.replica_context()
        logits = tf.stop_gradient(tf.cast(sample.logits, tf.float32))
        row_max = replica.all_reduce_max(tf.reduce_max(logits, axis=1), ctx)
        target = replica.all_reduce_sum(tf.reduce_sum(tf.where(sample.mask, logits, 0.0), axis=1), ctx)
        return tf.cast(target >= row_max, tf.float32)

    # -- the training hook (tfface.heads.base.TrainingHead) -------------------------------------

    def check_training(self, optimizer, loss):
        """Only SGD (the shards are updated here, with SGD-momentum) and plain sparse softmax
        cross-entropy (computed here, over the sampled classes of all shards)."""
        sgd_settings(optimizer)
        if not isinstance(loss, keras.losses.SparseCategoricalCrossentropy):
            raise ValueError(
                "A FaceModel with a PartialFC head trains with the (distributed) softmax "
                f"cross-entropy over the sampled classes; got loss={type(loss).__name__}"
            )

    def training_loss(self, embeddings, labels, logits_loss, step):
        """This replica's share of the softmax cross-entropy over the sampled classes of all
        shards (``logits_loss`` is not called: ``check_training`` made sure it is that loss);
        the sampled rows are the own sources; accuracy is the global batch's."""
        loss, sample = self.train_loss(embeddings, labels, step=step, training=True)
        sources = (sample.rows,) + ((sample.bias,) if sample.bias is not None else ())
        return HeadLoss(loss=loss, correct=self.global_accuracy(sample), own_sources=sources, state=sample)

    def apply_own_gradients(self, result, gradients, *, learning_rate, optimizer, weight_decay):
        """SGD(-momentum) on the sampled rows, with the optimizer's momentum and Nesterov
        setting and the model's coupled weight decay (on the rows)."""
        momentum, nesterov = sgd_settings(optimizer)
        return self.apply_gradients(
            result.state,
            gradients[0],
            gradients[1] if len(gradients) > 1 else None,
            learning_rate=learning_rate,
            momentum=momentum,
            nesterov=nesterov,
            weight_decay=weight_decay,
        )

    # -- inference --------------------------------------------------------------------------------

    def call(self, embeddings, labels=None, training=None):
        """Plain logits ``(B, C)`` over all classes (no margin, no sampling, no state update):
        each shard's columns are computed on its device and concatenated. Training goes through
        :meth:`training_loss` (the heads' training hook), which ``tfface.FaceModel`` calls."""
        if labels is not None and training:
            raise ValueError(
                "PartialFC does not train through call(): its shards are updated by its own step. "
                "Use it as the head of tfface.FaceModel (model.fit), or call train_loss and "
                "apply_gradients in a custom step"
            )
        emb = tf.cast(embeddings, tf.float32)
        parts = []
        for r in range(self._num_shards):
            bias = getattr(self, f"shard_bias_{r}") if self._uses_bias else None
            with tf.device(self.shard(r).device):
                sim = self._similarity(emb, tf.convert_to_tensor(self.shard(r)), bias)
                parts.append(self.head.plain_logits_from_cosine(sim, emb))
        return tf.concat(parts, axis=1)

    def monitored(self):
        return self.head.monitored()

    # -- .keras files and save_weights ------------------------------------------------------------
    # The shards are not Keras variables (so that the optimizer never holds them); these hooks put
    # them in .keras / .weights.h5 files as one full (C, D) matrix (and bias), which also lets a
    # file saved on R replicas load onto any other number of replicas.

    def _full(self, prefix):
        return np.concatenate([np.asarray(getattr(self, f"{prefix}_{r}")) for r in range(self._num_shards)])

    def save_own_variables(self, store):
        # PartialFC owns no Keras variables (the wrapped head saves its own state), so the
        # store holds only these entries.
        store["partial_fc_kernel"] = self._full("shard")
        store["partial_fc_momentum"] = self._full("shard_momentum")
        if self._uses_bias:
            store["partial_fc_bias"] = self._full("shard_bias")
            store["partial_fc_bias_momentum"] = self._full("shard_bias_momentum")

    def load_own_variables(self, store):
        for prefix, key in (
            ("shard", "partial_fc_kernel"),
            ("shard_momentum", "partial_fc_momentum"),
            ("shard_bias", "partial_fc_bias"),
            ("shard_bias_momentum", "partial_fc_bias_momentum"),
        ):
            if prefix.startswith("shard_bias") and not self._uses_bias:
                continue
            full = np.asarray(store[key])
            if full.shape[0] != self.num_classes:
                raise ValueError(
                    f"PartialFC: saved {key} has {full.shape[0]} classes, this head has {self.num_classes}"
                )
            for r, (start, size) in enumerate(self._bounds):
                getattr(self, f"{prefix}_{r}").assign(full[start : start + size])

    def compute_output_spec(self, embeddings, labels=None, training=None):
        return keras.KerasTensor((embeddings.shape[0], self.num_classes), dtype="float32")

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "head": keras.saving.serialize_keras_object(self.head),
                "sample_rate": self.sample_rate,
                "seed": self.seed,
            }
        )
        return config
