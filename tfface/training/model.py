"""``FaceModel``: a backbone, a margin head and auxiliary feature losses, trained by ``model.fit``.

One training step (``train_step``), per replica, the same for every head:

1. ``embeddings = backbone(images, training=True)``;
2. ``result = head.training_loss(embeddings, labels, logits_loss, step)``, the heads' training
   hook (``tfface.heads.base.TrainingHead``), returns a ``HeadLoss``: this replica's share of the
   logits loss, the per-sample correctness for ``accuracy``, and the tensors whose gradients the
   head applies itself (``own_sources``; none for an ordinary head, the sampled class rows of the
   sharded Partial FC head). An ordinary head computes ``logits_loss(labels, head(embeddings,
   labels, training=True))``, applying its margin and updating its own state (CurricularFace's
   ``t``);
3. ``total = result.loss + Σ_k w_k(step)·L_k(labels, embeddings) + regularisers
   + ½·weight_decay·Σ‖W‖²`` where ``w_k`` is a float or a step schedule (``StepWeight``) read at
   ``optimizer.iterations``;
4. the gradients of this replica's share of ``total`` (scaled by the loss scale under mixed
   precision) with respect to the trainable variables are summed across replicas and applied by
   the optimizer, so the update equals a single-device step on the global batch; the gradients
   with respect to ``result.own_sources`` (unscaled) go to ``head.apply_own_gradients``;
5. the class centres (``centres``, the one ``ClassCentres`` layer shared with the losses that
   need it) are updated once with this step's embeddings: the losses above read the values
   *before* the update.

Weight decay is *coupled* L2, ``g ← g + weight_decay·w`` (the papers' Caffe ``weight_decay``,
PyTorch ``SGD(weight_decay=...)`` and slim ``l2_regularizer`` with its ½), not Keras' decoupled
``weight_decay`` optimizer argument. Which variables it covers is ``decay_scope``:

* ``"kernels"`` (default): convolution/dense kernels (every trainable variable named
  ``*kernel``) and the head's class weights ``head.kernel``; batch-norm parameters, biases and
  PReLU slopes are not decayed (facenet's slim code regularises weights only);
* ``"all_but_batchnorm"``: every trainable variable except the ``gamma``/``beta`` of
  batch-normalisation layers, so biases and PReLU slopes are decayed too (the CurricularFace
  official code, whose ``separate_irse_bn_paras`` leaves out only batch-norm parameters).

A head's own sources (the class shards of a sharded head) receive ``weight_decay`` through
``apply_own_gradients``.

Distribution follows Keras' convention: a loss called in a replica returns that replica's share
of the global-batch value (``Loss.__call__`` divides per-sample means by the number of replicas;
tfface's batch-level losses — Range, Marginal, Minimum Margin, OHEM — gather the global batch and
divide themselves). The model divides its own terms (weight decay, layer losses) the same way.
Logged values are the global-batch values: ``loss`` and its terms ``head_loss``, each auxiliary
term by its name (weighted, as it enters the objective), ``l2`` (weight decay) and
``layer_losses`` (regularisers), each an epoch mean weighted by the batch size, so that ``loss``
is exactly the sum of the terms logged beside it.
"""
import inspect

import keras
import tensorflow as tf
from keras import ops

from tfface import replica
from tfface.heads.base import HeadLoss, TrainingHead
from tfface.layers import ClassCentres
from tfface.training.schedules import StepWeight

_RESERVED = ("loss", "accuracy", "l2", "learning_rate")
DECAY_SCOPES = ("kernels", "all_but_batchnorm")


def _resolve_weight(name, weight):
    if isinstance(weight, dict):
        return StepWeight(weight)
    if isinstance(weight, bool):
        raise ValueError(f"aux_losses[{name!r}]: weight must be a number or a step schedule, got {weight!r}")
    if isinstance(weight, (int, float)):
        return float(weight)
    if callable(weight):
        return weight
    raise ValueError(
        f"aux_losses[{name!r}]: weight must be a float, a {{step: weight}} dict or a schedule "
        f"such as tfface.training.StepWeight, got {weight!r}"
    )


def _resolve_logits_loss(loss):
    """The loss applied to the head's logits. Heads return logits, so a Keras string or function
    that has ``from_logits`` is bound with ``from_logits=True``."""
    if loss is None:
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    if isinstance(loss, str):
        resolved = keras.losses.get(loss)
        if isinstance(resolved, type):
            resolved = resolved()
        loss = resolved
    if isinstance(loss, keras.losses.Loss):
        if getattr(loss, "_fn_kwargs", {}).get("from_logits") is False:
            raise ValueError(
                f"the logits loss {type(loss).__name__} has from_logits=False; heads return "
                "logits, so use from_logits=True"
            )
        return loss
    if callable(loss):
        try:
            params = inspect.signature(loss).parameters
        except (TypeError, ValueError):
            params = {}
        kwargs = {"from_logits": True} if "from_logits" in params else {}
        return keras.losses.LossFunctionWrapper(loss, name=getattr(loss, "__name__", None), **kwargs)
    raise ValueError(f"loss must be a keras Loss, a loss name or a function, got {loss!r}")


def _requires_centres(target):
    """Whether a loss (class or instance) declares that it reads the class centres."""
    return bool(getattr(target, "requires_centres", False))


def _held_centres(loss):
    """The ``ClassCentres`` layer a loss was built with, if any."""
    layer = getattr(loss, "centres", None)
    return layer if isinstance(layer, ClassCentres) else None


def _batchnorm_variables(layer):
    """ids of the variables of every batch-normalisation layer inside ``layer``."""
    found = set()
    # Keras has no public recursive walk over nested layers (Model.layers is one level).
    for sub in layer._flatten_layers(include_self=True, recursive=True):  # noqa: SLF001
        if isinstance(sub, keras.layers.BatchNormalization):
            found.update(id(v) for v in sub.weights)
    return found


def _has_layer_losses(layer):
    """Whether any layer inside ``layer`` adds losses of its own (a weight or activity
    regulariser), which the step adds to the objective and logs as ``layer_losses``."""
    for sub in layer._flatten_layers(include_self=True, recursive=True):  # noqa: SLF001
        if getattr(sub, "activity_regularizer", None) is not None:
            return True
        if any(getattr(v, "regularizer", None) is not None for v in sub.trainable_weights):
            return True
    return False


@keras.saving.register_keras_serializable(package="tfface")
class FaceModel(keras.Model):
    """Backbone + margin head + auxiliary losses for ``model.fit``.

    Args:
        backbone: a ``keras.Model`` from images to embeddings ``(B, D)``; ``model.embedder``.
        head: a margin head, ``head(embeddings, labels, training=True) -> logits (B, C)``,
            with the training hook of ``tfface.heads.base.TrainingHead`` (every tfface head,
            the sharded one included, has it).
        aux_losses: ``{name: (loss, weight)}`` (or ``{name: loss}`` for weight 1); each loss is
            called ``loss(labels, embeddings)``; ``weight`` is a float, a ``{step: weight}`` dict
            or a schedule such as ``StepWeight``. ``name`` is the metric name of the term.
        centres: the one ``tfface.layers.ClassCentres`` layer of the model (or ``None``), the
            same object the centre losses were built with; the model builds it, updates it once
            per step and saves it once. A loss that declares ``requires_centres`` (or holds a
            ``ClassCentres``) must hold this layer.
        weight_decay: coupled L2 coefficient (gradient ``g + weight_decay·w``); 0 disables it.
        decay_scope: the variables under weight decay, ``"kernels"`` (conv/dense kernels and
            the head's class weights) or ``"all_but_batchnorm"`` (every trainable variable but
            batch-norm ``gamma``/``beta``); see the module docstring.
        check_labels: add an in-graph check that every label is in ``[0, head.num_classes)``
            (a label outside that range would otherwise give a silently wrong one-hot).

    ``compile(optimizer, loss=None)``: ``loss`` is the logits loss (default sparse categorical
    cross-entropy from logits; e.g. ``tfface.losses.HardMining()``); the head may refuse an
    optimizer or loss it cannot train with (``head.check_training``). Metrics are fixed: ``loss``
    (the objective) and its terms, ``head_loss`` (the logits loss), each auxiliary term by name
    (weighted: ``w_k(step)·L_k``), ``l2`` when weight decay is on and ``layer_losses`` when a
    layer has a regulariser, so that ``loss = head_loss + Σ_k <name_k> + l2 + layer_losses``;
    ``accuracy`` (the mean of the head's per-sample ``correct``: with the margin for the
    training logits), the head's ``monitored()`` values and ``learning_rate``.
    """

    def __init__(self, backbone, head, aux_losses=None, centres=None, weight_decay=0.0, decay_scope="kernels",
                 check_labels=True, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(backbone, keras.layers.Layer):
            raise ValueError(f"backbone must be a keras.Model/Layer, got {type(backbone).__name__}")
        if not isinstance(head, keras.layers.Layer) or not isinstance(head, TrainingHead):
            raise ValueError(
                "head must be a keras Layer with the heads' training hook (a tfface head, or a "
                f"layer mixing in tfface.heads.TrainingHead), got {type(head).__name__}"
            )
        if centres is not None and not isinstance(centres, ClassCentres):
            raise ValueError(f"centres must be a tfface.layers.ClassCentres layer or None, got {centres!r}")
        if weight_decay is None or weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay!r}")
        if decay_scope not in DECAY_SCOPES:
            raise ValueError(f"decay_scope must be one of {DECAY_SCOPES}, got {decay_scope!r}")
        self.backbone = backbone
        self.head = head
        self.centres = centres
        self.weight_decay = float(weight_decay)
        self.decay_scope = decay_scope
        self.check_labels = bool(check_labels)

        self._aux = []
        for name, entry in (aux_losses or {}).items():
            if not isinstance(name, str) or not name.isidentifier():
                raise ValueError(f"aux_losses keys must be identifiers (metric names), got {name!r}")
            if name in _RESERVED:
                raise ValueError(f"aux_losses key {name!r} clashes with a metric name {_RESERVED}")
            loss, weight = entry if isinstance(entry, (tuple, list)) else (entry, 1.0)
            if not callable(loss):
                raise ValueError(f"aux_losses[{name!r}] must be a loss, got {loss!r}")
            held = _held_centres(loss)
            if (_requires_centres(loss) or held is not None) and (centres is None or held is not centres):
                # A loss reading centres the model does not update would train against stale ones.
                raise ValueError(
                    f"aux_losses[{name!r}] ({type(loss).__name__}) reads class centres: build it "
                    "with the model's ClassCentres layer and pass that same layer as "
                    f"FaceModel(centres=...) (got centres={centres!r})"
                )
            self._aux.append((name, loss, _resolve_weight(name, weight)))

        # The logged terms of the objective: loss = head_loss + Σ aux terms (weighted, by name)
        # + l2 + layer_losses, each the epoch mean of what entered the step's objective.
        self.head_loss_tracker = keras.metrics.Mean(name="head_loss")
        # The mean of the head's per-sample correctness (HeadLoss.correct; argmax in test_step).
        self.accuracy_tracker = keras.metrics.Mean(name="accuracy")
        self.aux_trackers = [keras.metrics.Mean(name=name) for name, _, _ in self._aux]
        self.l2_tracker = keras.metrics.Mean(name="l2") if self.weight_decay > 0 else None
        self.layer_loss_tracker = None
        self._logits_loss = None

        output_shape = getattr(backbone, "output_shape", None) if backbone.built else None
        if output_shape is not None and output_shape[-1] is not None:
            self._build_parts(int(output_shape[-1]))

    # ------------------------------------------------------------------------------------------
    # structure

    @property
    def embedder(self):
        """The backbone: images ``(B, H, W, 3)`` in [0, 255] -> embeddings ``(B, D)``."""
        return self.backbone

    @property
    def aux_losses(self):
        """``{name: (loss, weight)}`` as given (weights resolved to floats or schedules)."""
        return {name: (loss, weight) for name, loss, weight in self._aux}

    @property
    def class_centres(self):
        """``[centres]``, or ``[]`` without centres (the checkpoint layout's list)."""
        return [] if self.centres is None else [self.centres]

    def _build_parts(self, dim):
        # Called with zeros and training=False: builds the weights without any state update.
        embeddings = ops.zeros((1, dim), "float32")
        if not self.head.built:
            self.head(embeddings, training=False)
        if self.centres is not None and not self.centres.built:
            self.centres(embeddings, ops.zeros((1,), "int32"), training=False)
        if self.layer_loss_tracker is None and _has_layer_losses(self):
            self.layer_loss_tracker = keras.metrics.Mean(name="layer_losses")
        self.built = True

    def build(self, input_shape):
        if not self.backbone.built:
            self.backbone.build(input_shape)
        dim = self.backbone.compute_output_shape(input_shape)[-1]
        self._build_parts(int(dim))

    def call(self, images, training=None):
        return self.backbone(images, training=training)

    @property
    def decay_variables(self):
        """The variables under coupled weight decay, by ``decay_scope``: ``"kernels"``, the
        trainable ``*kernel`` variables (conv and dense kernels) and the head's class weights;
        ``"all_but_batchnorm"``, every trainable variable except batch-norm ``gamma``/``beta``."""
        if self.decay_scope == "all_but_batchnorm":
            batchnorm = _batchnorm_variables(self)
            return [v for v in self.trainable_variables if id(v) not in batchnorm]
        head_kernel = getattr(self.head, "kernel", None)
        chosen = []
        for variable in self.trainable_variables:
            if variable.name.endswith("kernel") or variable is head_kernel:
                chosen.append(variable)
        return chosen

    # ------------------------------------------------------------------------------------------
    # compile / steps

    def compile(self, optimizer="sgd", loss=None, metrics=None, weighted_metrics=None, jit_compile="auto",
                **kwargs):
        if metrics or weighted_metrics:
            raise ValueError(
                "FaceModel logs its own metrics (loss, accuracy, each auxiliary term, the head's "
                "monitored values, learning_rate); pass extra evaluation as callbacks "
                "(e.g. tfface.eval.VerificationCallback) instead of compile(metrics=...)"
            )
        loss = _resolve_logits_loss(loss)
        self.head.check_training(keras.optimizers.get(optimizer), loss)
        if jit_compile not in (True, False, "auto"):
            raise ValueError(f"jit_compile must be True, False or 'auto', got {jit_compile!r}")
        super().compile(optimizer=optimizer, loss=loss, jit_compile=jit_compile, **kwargs)
        self._jit_backbone = None
        self._replica_jit = False
        self._head_jit = None
        from tensorflow.python.framework.config import is_op_determinism_enabled

        deterministic = is_op_determinism_enabled()
        replicas = self.distribute_strategy.num_replicas_in_sync
        if jit_compile is True:
            # An explicit True is the user's choice: honour it unless determinism forbids it.
            if deterministic:
                raise ValueError("jit_compile=True is not available with op determinism enabled")
            if replicas > 1:
                # XLA cannot compile a step that spans replicas (mirrored variables live on
                # several devices): compile each replica's backbone forward and backward pass
                # instead, where nearly all the work is; head, losses and the all-reduce stay TF.
                self._jit_compile = False
                self._replica_jit = True
            else:
                self._jit_compile = True
        elif jit_compile == "auto" and not self._jit_compile and not deterministic and replicas == 1:
            # Keras' "auto" compiles the whole step where XLA pays on the device at hand (a GPU,
            # one device); elsewhere (CPU) the head and its loss are still compiled: their
            # (B, C) margin arithmetic and the normalisation of the (D, C) class weights fuse
            # into the matrix products (measured ~1.9x faster on CPU at C=50,000). Labels are
            # checked outside the compiled part (check_labels) and by the input pipeline.
            # Only the ordinary hook (no own sources, which need the step's tape) of a head
            # that declares itself XLA-compatible (the sharded head does not).
            ordinary = type(self.head).training_loss is TrainingHead.training_loss
            if ordinary and getattr(self.head, "supports_jit", False):
                self._head_jit = tf.function(self._head_loss_pair, jit_compile=True, reduce_retracing=True)
        self._logits_loss = loss
        if self.built and not self.optimizer.built:
            self.optimizer.build(self.trainable_variables)

    @property
    def head_jit_compile(self):
        """Whether the head and its logits loss run as one XLA cluster inside an otherwise
        uncompiled step (``compile(jit_compile="auto")`` where Keras does not compile the step)."""
        return getattr(self, "_head_jit", None) is not None

    def _head_loss_pair(self, embeddings, labels):
        # The step is read inside (the optimizer's iteration variable, as train_step passes it).
        result = self.head.training_loss(embeddings, labels, self._logits_loss, self.optimizer.iterations)
        return result.loss, result.correct

    def _head_training_loss(self, embeddings, labels, step):
        if getattr(self, "_head_jit", None) is None:
            return self.head.training_loss(embeddings, labels, self._logits_loss, step)
        loss, correct = self._head_jit(embeddings, labels)
        return HeadLoss(loss=loss, correct=correct)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Under a tf.distribute strategy Keras builds the model from one batch taken from the
        # training iterator; with steps_per_epoch that same iterator then trains, so the batch
        # would be skipped (and under MultiWorkerMirroredStrategy the build fails). A FaceModel
        # is built at construction and its optimizer at compile: nothing to build here.
        if self.built and self.optimizer is not None and self.optimizer.built:
            return
        super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    def compile_from_config(self, config):
        # Keras skips compile_from_config for models that override compile(); ours accepts the
        # saved arguments unchanged, so a reloaded .keras model is compiled with its optimizer.
        config = keras.saving.deserialize_keras_object(config)
        config.pop("metrics", None)
        config.pop("weighted_metrics", None)
        self.compile(**config)
        if self.built:
            self.optimizer.build(self.trainable_variables)

    def _train_forward(self, images):
        if not getattr(self, "_replica_jit", False):
            return self.backbone(images, training=True)
        if self._jit_backbone is None:
            self._jit_backbone = tf.function(
                lambda x: self.backbone(x, training=True), jit_compile=True, reduce_retracing=True
            )
        return self._jit_backbone(images)

    def _unpack(self, data):
        images, labels, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        if labels is None:
            raise ValueError("FaceModel.fit needs (images, labels) batches; got images only")
        if sample_weight is not None:
            raise ValueError("FaceModel does not support sample weights")
        labels = ops.reshape(ops.cast(labels, "int32"), (-1,))
        return images, labels

    def _label_check(self, labels):
        num_classes = getattr(self.head, "num_classes", None)
        if not self.check_labels or num_classes is None:
            return []
        # One comparison and one assertion per step: a negative label cast to uint32 wraps above
        # every class index, so "< num_classes" on uint32 checks both ends.
        in_range = tf.reduce_all(tf.cast(labels, tf.uint32) < tf.constant(num_classes, tf.uint32))
        return [
            tf.debugging.Assert(
                in_range,
                [f"FaceModel: a label is >= the head's num_classes ({num_classes}) or negative; labels:", labels],
                summarize=10,
            )
        ]

    def _weights_at(self, step):
        values = []
        for _, _, weight in self._aux:
            values.append(ops.cast(weight(step) if callable(weight) else weight, "float32"))
        return values

    def train_step(self, data):
        images, labels = self._unpack(data)
        with tf.control_dependencies(self._label_check(labels)):
            labels = tf.identity(labels)
        optimizer = self.optimizer
        step = optimizer.iterations
        learning_rate = ops.cast(optimizer.learning_rate, "float32")
        weights = self._weights_at(step)
        replicas = replica.num_replicas()

        # Keras' convention, which tfface's losses and heads follow: a loss called under a
        # strategy returns this replica's share of the global-batch value (per-sample means are
        # divided by the number of replicas in Loss.__call__, batch-level losses divide
        # themselves), so the gradients summed over replicas equal the single-device gradient.
        with tf.GradientTape() as tape:
            embeddings = ops.cast(self._train_forward(images), "float32")
            result = self._head_training_loss(embeddings, labels, step)
            extra, terms = self._auxiliary_terms(labels, embeddings, weights, replicas)
            head_share = ops.cast(result.loss, "float32")
            share = head_share + extra
            objective = optimizer.scale_loss(share)

        variables = self.trainable_variables
        own = list(result.own_sources)
        gradients = tape.gradient(objective, list(variables) + own)
        optimizer.apply_gradients(zip(gradients[: len(variables)], variables))
        if own:
            # Undo the loss scale of mixed precision (1 without it): the head applies these itself.
            unscale = 1.0 / ops.cast(optimizer.scale_loss(tf.constant(1.0)), "float32")
            own_gradients = [None if g is None else g * unscale for g in gradients[len(variables):]]
            self.head.apply_own_gradients(
                result, own_gradients, learning_rate=learning_rate, optimizer=optimizer,
                weight_decay=self.weight_decay,
            )

        # Centre update after the losses read the centres (the losses use the values before
        # this step's update); no gradient flows through the update itself.
        if self.centres is not None:
            self.centres(ops.stop_gradient(embeddings), labels, training=True)

        batch = ops.shape(labels)[0]
        # Every term is tracked as this replica's share times the replicas (the global-batch
        # value), weighted by the batch like the total, so the logged terms sum to ``loss``.
        self._loss_tracker.update_state(share * replicas, sample_weight=batch)
        self.head_loss_tracker.update_state(head_share * replicas, sample_weight=batch)
        self.accuracy_tracker.update_state(result.correct)
        for tracker, value in terms:
            tracker.update_state(value * replicas, sample_weight=batch)
        return self._logs(learning_rate)

    def _auxiliary_terms(self, labels, embeddings, weights, replicas):
        """This replica's share of every term beyond the logits loss: the weighted auxiliary
        losses, the layers' own losses and the coupled L2. Returns ``(sum, [(tracker, share)])``
        with each term's tracker and this replica's share of it."""
        total = 0.0
        terms = []
        for (_, loss, _), weight, tracker in zip(self._aux, weights, self.aux_trackers):
            value = weight * ops.cast(loss(labels, embeddings), "float32")
            terms.append((tracker, value))
            total = total + value
        own = []
        if self.losses:
            own.append((self.layer_loss_tracker, ops.sum([ops.cast(ops.sum(l), "float32") for l in self.losses])))
        if self.weight_decay > 0:
            l2 = 0.5 * self.weight_decay * ops.sum(
                [ops.sum(ops.square(ops.cast(v, "float32"))) for v in self.decay_variables]
            )
            own.append((self.l2_tracker, l2))
        for tracker, term in own:
            # Model-level terms are replica-independent: each replica contributes 1/N.
            term = term / replicas if replicas > 1 else term
            total = total + term
            if tracker is not None:
                terms.append((tracker, term))
        return total, terms

    def _logs(self, learning_rate=None):
        logs = dict(self.get_metrics_result())
        monitored = getattr(self.head, "monitored", None)
        if callable(monitored):
            for name, value in monitored().items():
                if name in logs:
                    raise ValueError(f"head.monitored() name {name!r} clashes with a metric name")
                logs[name] = ops.cast(value, "float32")
        if learning_rate is not None:
            logs["learning_rate"] = learning_rate
        if replica.multi_worker():
            # Keras reduces per-replica logs across workers with strategy.reduce(MEAN, axis=0),
            # which rejects scalars: give each value a batch axis of 1 (reduced back to a scalar).
            logs = {k: ops.reshape(ops.cast(v, "float32"), (1,)) for k, v in logs.items()}
        return logs

    def test_step(self, data):
        images, labels = self._unpack(data)
        embeddings = ops.cast(self.backbone(images, training=False), "float32")
        logits = self.head(embeddings, training=False)
        loss = ops.cast(self._logits_loss(labels, logits), "float32") * replica.num_replicas()
        self._loss_tracker.update_state(loss, sample_weight=ops.shape(labels)[0])
        predicted = ops.cast(ops.argmax(ops.cast(logits, "float32"), axis=-1), "int32")
        self.accuracy_tracker.update_state(ops.cast(ops.equal(predicted, labels), "float32"))
        return {"loss": self._loss_tracker.result(), "accuracy": self.accuracy_tracker.result()}

    def predict_step(self, data):
        images, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        return self.backbone(images, training=False)

    # ------------------------------------------------------------------------------------------
    # serialisation

    def get_config(self):
        aux = {}
        for name, loss, weight in self._aux:
            aux[name] = {
                "loss": keras.saving.serialize_keras_object(loss),
                "weight": weight if isinstance(weight, float) else keras.saving.serialize_keras_object(weight),
            }
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
            "backbone": keras.saving.serialize_keras_object(self.backbone),
            "head": keras.saving.serialize_keras_object(self.head),
            "aux_losses": aux,
            "centres": None if self.centres is None else keras.saving.serialize_keras_object(self.centres),
            "weight_decay": self.weight_decay,
            "decay_scope": self.decay_scope,
            "check_labels": self.check_labels,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        """Restore the centres first, then hand that one layer to every auxiliary loss that
        declares ``requires_centres`` (as its constructor argument ``centres``)."""
        config = dict(config)
        backbone = keras.saving.deserialize_keras_object(config.pop("backbone"), custom_objects=custom_objects)
        head = keras.saving.deserialize_keras_object(config.pop("head"), custom_objects=custom_objects)
        centres = config.pop("centres", None)
        if centres is not None:
            centres = keras.saving.deserialize_keras_object(centres, custom_objects=custom_objects)
        aux = {}
        for name, entry in config.pop("aux_losses", {}).items():
            loss_config = entry["loss"]
            if centres is not None and cls._loss_takes_centres(loss_config, custom_objects):
                loss_config = {**loss_config, "config": {**loss_config["config"], "centres": centres}}
            loss = keras.saving.deserialize_keras_object(loss_config, custom_objects=custom_objects)
            weight = entry["weight"]
            if isinstance(weight, dict) and "class_name" in weight:
                weight = keras.saving.deserialize_keras_object(weight, custom_objects=custom_objects)
            aux[name] = (loss, weight)
        if "dtype" in config and isinstance(config["dtype"], dict):
            config["dtype"] = keras.dtype_policies.deserialize(config["dtype"])
        return cls(backbone=backbone, head=head, aux_losses=aux, centres=centres, **config)

    @staticmethod
    def _loss_takes_centres(loss_config, custom_objects):
        if not isinstance(loss_config, dict):
            return False
        name = loss_config.get("registered_name") or loss_config.get("class_name")
        target = keras.saving.get_registered_object(name, custom_objects=custom_objects)
        # A loss whose saved config describes its own centres layer (written before losses
        # declared requires_centres) takes the model's layer in its place.
        return _requires_centres(target) or "centres" in loss_config.get("config", {})
