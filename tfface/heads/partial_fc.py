"""Partial FC: a sharded, sampled margin head for very many identities (An et al., "Partial FC:
Training 10 Million Identities on a Single Machine", ICCVW 2021; "Killing Two Birds with One
Stone", CVPR 2022).

What it does, per training step, on each of the R replicas of a ``tf.distribute`` strategy (every
replica of every worker under ``MultiWorkerMirroredStrategy``; shard ``r`` belongs to the replica
whose global ``replica_id_in_sync_group`` is ``r``, i.e. worker ``w`` with ``L`` devices owns
shards ``w·L .. w·L+L-1``):

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
``(C, D)`` matrix on one device defeats the point. So each worker creates one plain
``tf.Variable`` per local replica device, explicitly placed (bypassing the strategy's variable
creator): shard ``r`` and its momentum live on replica ``r``'s device only, and each replica reads
its own shard by its (static) replica id inside ``strategy.run``. The optimizer never sees these
variables (a Keras optimizer would all-reduce their dense gradients, which is the cost Partial FC
avoids). PartialFC implements the heads' training hook (``tfface.heads.base.TrainingHead``):
``training_loss`` returns the sampled rows as ``own_sources`` and a :class:`PartialFCSample` as
its state, and ``apply_own_gradients`` updates them, so ``tfface.FaceModel`` trains it with its one
ordinary step.

Checkpoints: a ``tf.train.Checkpoint`` (and a ``.keras``/``.weights.h5`` file) holds the *full*
``(C, D)`` kernel and momentum (and bias), gathered in class order from every shard of every
worker (``full_value``; a collective under ``MultiWorkerMirroredStrategy``, so every worker saves,
as that strategy requires anyway, and only the chief's file is kept), under the object
``partial_fc_shards``. Restoring re-slices them onto the shards of the layout at hand, so a
checkpoint restores onto any number of workers and devices.

Limitations: only SGD (with or without momentum/Nesterov) updates the shards; saving gathers the
full matrix on every worker (transient memory ``C·D`` floats per matrix).
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


class _ShardStore:
    """The shard variables of this worker, ``(kind, global shard id) -> tf.Variable``. A plain
    object on purpose: AutoTrackable does not see (so a checkpoint does not save) the variables
    one by one, whose shapes depend on the layout; ``_ShardCheckpoint`` saves them instead."""

    def __init__(self):
        self._variables = {}

    def add(self, kind, r, variable):
        self._variables[(kind, r)] = variable

    def get(self, kind, r):
        try:
            return self._variables[(kind, r)]
        except KeyError:
            raise KeyError(f"PartialFC: no {kind} shard {r} on this worker") from None


class _ShardCheckpoint(tf.__internal__.tracking.Trackable):
    """What a ``tf.train.Checkpoint`` saves of a PartialFC: the full ``(C, D)`` kernel and its
    momentum (and ``(C,)`` bias and momentum), gathered in class order from the shards of every
    replica of every worker, under the keys ``kernel``, ``momentum``, ``bias``,
    ``bias_momentum``. Restoring re-slices them onto the shards of the layout at hand, so a
    checkpoint written by W workers × L devices restores onto any other layout. Under
    ``MultiWorkerMirroredStrategy`` saving is a collective (every worker saves, as that
    strategy requires anyway; only the chief's file is kept)."""

    def __init__(self, layer):
        self._layer = layer

    def _serialize_to_tensors(self):
        return {kind: self._layer.full_value(kind) for kind in self._layer._kinds()}

    def _restore_from_tensors(self, restored_tensors):
        layer = self._layer
        ops = []
        for kind in layer._kinds():
            if kind not in restored_tensors:
                raise ValueError(f"PartialFC: the checkpoint has no {kind} for this head")
            value = restored_tensors[kind]
            layer._check_full(kind, value.shape)
            ops.append(layer.assign_full_value(kind, value))
        return tf.group(ops)


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
        self._strategy = strategy
        # Every replica of every worker owns one shard, numbered by its global replica id; this
        # worker creates (and holds) only the shards of its own replicas.
        self._num_shards = strategy.num_replicas_in_sync
        if self._num_shards > 1:
            devices = list(strategy.extended.worker_devices)
            local_ids = replica.local_replica_ids(strategy)
        else:
            devices, local_ids = [None], [0]
        self._local = dict(zip(local_ids, devices))
        self._bounds = ops_.shard_bounds(self.num_classes, self._num_shards)
        self._dim = dim
        # Softmax's bias is per class: it is sharded with the kernel instead of built by the head.
        uses_bias = bool(getattr(self.head, "use_bias", False))
        if not uses_bias:
            # The wrapped head keeps its state weights (t, iteration counter), not its kernel.
            self.head.build_state()
        self.head.built = True
        self._uses_bias = uses_bias
        limit = math.sqrt(6.0 / (dim + self.num_classes))
        # A plain holder: AutoTrackable does not track these variables one by one (a checkpoint
        # holds the full matrices instead, through ``partial_fc_shards``, see _ShardCheckpoint).
        self._store = _ShardStore()
        for r, device in self._local.items():
            start, size = self._bounds[r]
            with tf.variable_creator_scope(_plain_variable_creator), tf.device(device):
                # Glorot limits of the full (D, C) matrix: shards start as the unsharded kernel
                # would, keyed on the global shard id (the same values on any worker layout).
                value = tf.random.stateless_uniform(
                    (size, dim), seed=[self.seed, r], minval=-limit, maxval=limit
                )
                self._store.add("kernel", r, tf.Variable(value, name=f"shard_{r}"))
                self._store.add(
                    "momentum", r,
                    tf.Variable(tf.zeros((size, dim)), trainable=False, name=f"shard_momentum_{r}"),
                )
                if uses_bias:
                    self._store.add("bias", r, tf.Variable(tf.zeros((size,)), name=f"shard_bias_{r}"))
                    self._store.add(
                        "bias_momentum", r,
                        tf.Variable(tf.zeros((size,)), trainable=False, name=f"shard_bias_momentum_{r}"),
                    )
        self.partial_fc_shards = _ShardCheckpoint(self)

    @property
    def num_shards(self):
        return self._num_shards

    @property
    def shard_bounds(self):
        """``[(start, size)]`` of each shard's contiguous class range."""
        return list(self._bounds)

    @property
    def local_shards(self):
        """Global ids of the shards held by this worker (all of them on one worker)."""
        return sorted(self._local)

    def shard(self, r):
        """Shard ``r``'s ``(C_r, D)`` class rows (a ``tf.Variable`` on its replica's device);
        only this worker's shards (:attr:`local_shards`) are here."""
        return self._store.get("kernel", r)

    def shard_bias(self, r):
        """Shard ``r``'s ``(C_r,)`` biases (a ``Softmax`` head with bias)."""
        return self._store.get("bias", r)

    def shard_variable(self, kind, r):
        """``kind`` in ``kernel``, ``momentum``, ``bias``, ``bias_momentum`` of local shard ``r``."""
        return self._store.get(kind, r)

    def _kinds(self):
        return ("kernel", "momentum", "bias", "bias_momentum") if self._uses_bias else ("kernel", "momentum")

    def full_value(self, kind="kernel"):
        """The full ``(C, D)`` (or ``(C,)``) matrix of ``kind`` gathered from every shard of every
        worker, in class order. Under ``MultiWorkerMirroredStrategy`` this is a collective: every
        worker must call it, in the same order."""
        per = self._bounds[0][1]
        padded = {}
        for r in self._local:
            value = tf.convert_to_tensor(self._store.get(kind, r))
            with tf.device(self._local[r]):
                pad = per - self._bounds[r][1]
                if pad:
                    value = tf.pad(value, [[0, pad]] + [[0, 0]] * (len(value.shape) - 1))
                padded[r] = value
        if len(self._local) == self._num_shards:
            full = tf.concat([padded[r] for r in range(self._num_shards)], axis=0)
        else:
            # Equal shapes on every replica (the last shard padded): strategy.gather's collective.
            full = replica.gather_local_values(padded, self._strategy)
        return full[: self.num_classes]

    def assign_full_value(self, kind, full):
        """Assign this worker's shards of ``kind`` from a full ``(C, ...)`` matrix (class order)."""
        full = tf.convert_to_tensor(full, tf.float32)
        ops = []
        for r in self._local:
            start, size = self._bounds[r]
            ops.append(self._store.get(kind, r).assign(full[start : start + size]))
        return tf.group(ops)

    @property
    def kernel(self):
        """The full ``(D, C)`` class matrix, gathered from the shards (for inspection; this
        materialises all of it; a collective that every worker must call under
        ``MultiWorkerMirroredStrategy``)."""
        return tf.transpose(self.full_value("kernel"))

    def set_kernel(self, kernel, bias=None):
        """Assign a full ``(D, C)`` kernel (and ``(C,)`` bias) to the shards of this worker (call
        it on every worker with the same matrix)."""
        kernel = np.asarray(kernel, dtype="float32")
        self.assign_full_value("kernel", kernel.T)
        if self._uses_bias and bias is not None:
            self.assign_full_value("bias", np.asarray(bias, "float32"))

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
            bias = tf.convert_to_tensor(self.shard_bias(rid)) if self._uses_bias else None
        else:
            rows = tf.gather(self.shard(rid), index)
            bias = tf.gather(self.shard_bias(rid), index) if self._uses_bias else None
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
        slot = self.shard_variable("momentum", rid) if momentum else None
        ops = [
            ops_.sparse_momentum_update(
                self.shard(rid), slot, index, grad_rows, learning_rate, momentum, nesterov, weight_decay
            )
        ]
        if self._uses_bias and grad_bias is not None:
            bslot = self.shard_variable("bias_momentum", rid) if momentum else None
            ops.append(
                ops_.sparse_momentum_update(
                    self.shard_bias(rid), bslot, index, grad_bias, learning_rate, momentum,
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

    def checkpoint_objects(self):
        """The class shards (full matrices in class order, re-sliced on restore)."""
        return {"head_shards": self.partial_fc_shards}

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
        if len(self._local) < self._num_shards:
            return self._call_across_workers(emb)
        parts = []
        for r in range(self._num_shards):
            bias = self.shard_bias(r) if self._uses_bias else None
            with tf.device(self.shard(r).device):
                sim = self._similarity(emb, tf.convert_to_tensor(self.shard(r)), bias)
                parts.append(self.head.plain_logits_from_cosine(sim, emb))
        return tf.concat(parts, axis=1)

    def _call_across_workers(self, emb):
        # Some shards live on other workers: inside strategy.run, each replica computes the
        # columns of its shard for the global batch, the columns are all-gathered (the last
        # shard padded to the common width) and each replica keeps its own samples' rows.
        ctx = replica.replica_context()
        per = self._bounds[0][1]
        if ctx is None:
            # Cross-replica (e.g. FaceModel building its parts): every worker computes its
            # shards' columns of the same batch and they are gathered (a collective: every worker
            # calls it, as they all build and evaluate the model together).
            parts = {}
            for r, device in self._local.items():
                with tf.device(device):
                    bias = self.shard_bias(r) if self._uses_bias else None
                    sim = self._similarity(emb, tf.convert_to_tensor(self.shard(r)), bias)
                    logits = self.head.plain_logits_from_cosine(sim, emb)
                    parts[r] = tf.transpose(tf.pad(logits, [[0, 0], [0, per - self._bounds[r][1]]]))
            return tf.transpose(replica.gather_local_values(parts, self._strategy)[: self.num_classes])
        rid = replica.replica_id(ctx)
        start, size = self._bounds[rid]
        sizes = replica.all_gather(tf.shape(emb)[:1], ctx)
        everyone = replica.all_gather(emb, ctx)
        bias = self.shard_bias(rid) if self._uses_bias else None
        sim = self._similarity(everyone, tf.convert_to_tensor(self.shard(rid)), bias)
        logits = self.head.plain_logits_from_cosine(sim, everyone)
        logits = tf.pad(logits, [[0, 0], [0, per - size]])
        full = ctx.all_gather(tf.transpose(logits), axis=0)  # (R·per, B_global), shard order
        offset = tf.reduce_sum(sizes[:rid])
        return tf.transpose(full[: self.num_classes, offset : offset + tf.shape(emb)[0]])

    def monitored(self):
        return self.head.monitored()

    # -- checkpoints, .keras files and save_weights -----------------------------------------------
    # The shards are not Keras variables (so that the optimizer never holds them). Every format
    # stores the full (C, D) matrix (and momentum, bias), gathered from the shards of every worker
    # in class order, and re-slices it on load: a file written on any layout (replicas × workers)
    # loads onto any other.

    def save_own_variables(self, store):
        # PartialFC owns no Keras variables (the wrapped head saves its own state), so the
        # store holds only these entries.
        for kind in self._kinds():
            store[f"partial_fc_{kind}"] = np.asarray(self.full_value(kind))

    def load_own_variables(self, store):
        for kind in self._kinds():
            key = f"partial_fc_{kind}"
            full = np.asarray(store[key])
            self._check_full(key, full.shape)
            self.assign_full_value(kind, full)

    def _check_full(self, key, shape):
        shape = tuple(None if d is None else int(d) for d in shape)
        want = (self.num_classes,) if "bias" in key else (self.num_classes, self._dim)
        if len(shape) != len(want) or any(d is not None and d != w for d, w in zip(shape, want)):
            raise ValueError(f"PartialFC: saved {key} has shape {shape}, this head needs {want}")

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
