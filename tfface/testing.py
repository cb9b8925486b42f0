"""Shared test harness for tfface layers, heads and losses.

Modelled on keras-hub's ``run_layer_test``: every head, loss, centre layer and backbone in the
package is put through the same checks, so a new one is covered by a single call (and, through
``tests/components.py``, by a single row of the shared component table):

* ``get_config``/``from_config`` round trip, and every constructor argument present in the config
  (compared with ``inspect.signature``);
* ``.keras`` save and reload with identical outputs;
* one ``model.fit`` step that changes the weights and gives a finite loss;
* a ``mixed_float16`` run whose logits stay float32 and finite.

It also provides the multi-device helpers used by the distribution tests: the CPU is split into
logical devices (``configure_logical_cpus``, called from the tests' ``conftest.py`` before
TensorFlow initialises) and ``mirrored_strategy(n)`` runs on the first ``n`` of them.

Nothing here runs on import.
"""
import contextlib
import inspect
import os
import tempfile

import numpy as np

# ---------------------------------------------------------------------------------------------
# devices


def configure_logical_cpus(n=4):
    """Split the physical CPU into ``n`` logical devices. Must run before TensorFlow initialises
    its devices (i.e. before the first op); returns the number of logical CPUs available."""
    import tensorflow as tf

    cpus = tf.config.list_physical_devices("CPU")
    try:
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration() for _ in range(n)]
        )
    except RuntimeError:
        # Devices already initialised (configuration is process-wide and fixed after first use).
        pass
    return len(tf.config.list_logical_devices("CPU"))


_STRATEGIES = {}


def mirrored_strategy(n=2):
    """A ``MirroredStrategy`` over the first ``n`` logical CPU devices.

    One strategy per ``n`` for the whole process: two strategies over the same devices number
    their collective operations independently, and an all-gather of one can then be matched
    with an all-gather of the other (a shape-mismatch abort of the collective executor).
    """
    import tensorflow as tf

    if n in _STRATEGIES:
        return _STRATEGIES[n]

    devices = [d.name for d in tf.config.list_logical_devices("CPU")][:n]
    if len(devices) < n:
        raise RuntimeError(
            f"mirrored_strategy({n}) needs {n} logical CPU devices, found {len(devices)}; call "
            "tfface.testing.configure_logical_cpus() before TensorFlow initialises"
        )
    # Strategies over different device groups must not share collective group keys either;
    # MirroredStrategy reads the base of its keys from this class attribute when constructed.
    tf.distribute.MirroredStrategy._collective_key_base = 1000 * len(_STRATEGIES)
    try:
        _STRATEGIES[n] = tf.distribute.MirroredStrategy(devices)
    finally:
        tf.distribute.MirroredStrategy._collective_key_base = 0
    return _STRATEGIES[n]


# ---------------------------------------------------------------------------------------------
# configuration


def constructor_arguments(cls):
    """Names of the explicit constructor arguments of ``cls`` (no self/*args/**kwargs)."""
    params = inspect.signature(cls.__init__).parameters.values()
    return [
        p.name
        for p in params
        if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]


def assert_config_complete(obj, exclude=(), arguments=None):
    """Every constructor argument of ``type(obj)`` (or the names in ``arguments``: the registered
    arguments of a builder function that returns a Keras object) is returned by
    ``get_config()``."""
    config = obj.get_config()
    if arguments is None:
        arguments = constructor_arguments(type(obj))
    missing = [a for a in arguments if a not in config and a not in exclude]
    assert not missing, f"{type(obj).__name__}.get_config() lacks constructor arguments {missing}"
    return config


def assert_config_roundtrip(obj):
    """``from_config(get_config())`` rebuilds an object with the same config, and the object
    survives Keras serialisation (``serialize_keras_object``/``deserialize_keras_object``)."""
    import keras

    config = obj.get_config()
    clone = type(obj).from_config(config)
    assert clone.get_config() == config, (
        f"{type(obj).__name__} config changed on round trip:\n{config}\n!=\n{clone.get_config()}"
    )
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(obj))
    assert type(restored) is type(obj)
    assert restored.get_config() == config
    return clone


@contextlib.contextmanager
def dtype_policy(name):
    """Temporarily set the global Keras dtype policy (e.g. ``"mixed_float16"``)."""
    import keras

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def assert_keras_roundtrip(model, inputs, custom_objects=None, atol=1e-6):
    """Save ``model`` to a ``.keras`` file, reload it, and compare predictions on ``inputs``."""
    import keras

    expected = model(inputs, training=False)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        model.save(path)
        restored = keras.saving.load_model(path, custom_objects=custom_objects)
    got = restored(inputs, training=False)
    for e, g in zip(_flat(expected), _flat(got)):
        np.testing.assert_allclose(np.asarray(g), np.asarray(e), rtol=0, atol=atol)
    return restored


def _flat(x):
    import keras

    return keras.tree.flatten(x)


# ---------------------------------------------------------------------------------------------
# heads


def head_model(head, embedding_dim):
    """A functional model ``(embeddings, labels) -> head(embeddings, labels)``."""
    import keras

    emb = keras.Input((embedding_dim,), name="embeddings")
    lab = keras.Input((), dtype="int32", name="labels")
    return keras.Model([emb, lab], head(emb, lab), name=f"{head.name}_model")


def head_batch(embedding_dim=8, num_classes=5, batch_size=6, seed=0):
    """Random embeddings and labels (every class present when batch_size >= num_classes)."""
    rng = np.random.default_rng(seed)
    emb = rng.normal(size=(batch_size, embedding_dim)).astype("float32")
    labels = (np.arange(batch_size) % num_classes).astype("int32")
    rng.shuffle(labels)
    return emb, labels


def run_head_test(cls, init_kwargs, embedding_dim=8, batch_size=6, mixed_precision=True):
    """Run the shared checks on a margin head class.

    ``init_kwargs`` must include ``num_classes``. Returns the fitted model for further checks.
    """
    import keras

    num_classes = init_kwargs["num_classes"]
    emb, labels = head_batch(embedding_dim, num_classes, batch_size)

    head = cls(**init_kwargs)
    assert_config_complete(head)
    assert_config_roundtrip(head)

    model = head_model(head, embedding_dim)
    logits = model([emb, labels], training=True)
    assert tuple(logits.shape) == (batch_size, num_classes), logits.shape
    assert logits.dtype == "float32", logits.dtype
    assert np.all(np.isfinite(np.asarray(logits)))
    assert tuple(head.kernel.shape) == (embedding_dim, num_classes)

    plain = head(emb)
    assert tuple(plain.shape) == (batch_size, num_classes)
    assert np.all(np.isfinite(np.asarray(plain)))

    assert_keras_roundtrip(model, [emb, labels])

    model.compile(
        optimizer=keras.optimizers.SGD(0.1),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    before = np.array(head.kernel)
    history = model.fit([emb, labels], labels, batch_size=batch_size, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert not np.allclose(np.array(head.kernel), before), "one fit step left the kernel unchanged"

    if mixed_precision:
        with dtype_policy("mixed_float16"):
            mp_head = cls(**init_kwargs)
            mp_model = head_model(mp_head, embedding_dim)
            mp_model.compile(
                optimizer=keras.optimizers.SGD(0.1),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            )
            mp_logits = mp_model([emb, labels], training=True)
            assert mp_logits.dtype == "float32", f"mixed_float16 logits are {mp_logits.dtype}"
            assert np.all(np.isfinite(np.asarray(mp_logits)))
            hist = mp_model.fit([emb, labels], labels, batch_size=batch_size, epochs=1, verbose=0)
            assert np.isfinite(hist.history["loss"][0])
    return model


# ---------------------------------------------------------------------------------------------
# losses


def run_loss_test(
    loss, y_true, y_pred, expect_scalar=True, fit=True, reload_same_value=True, arguments=None
):
    """Shared checks on a ``keras.losses.Loss``: config complete and round-trips, and the loss
    evaluates to a finite value on ``(y_true, y_pred)``. With ``fit`` (default), also: one
    ``model.fit`` step of a small Dense model producing ``y_pred``'s shape, compiled with the
    loss, changes the weights with a finite loss; the compiled model survives a ``.keras`` save
    and reload (the same loss value from ``evaluate`` unless ``reload_same_value=False``: a loss
    that reads state of another layer, such as ``CentreLoss``, is re-attached to a fresh one);
    and a ``mixed_float16`` fit step stays finite. ``arguments``: the constructor arguments the
    config must hold (default: those of ``type(loss)``). Returns the value as numpy."""
    assert_config_complete(loss, arguments=arguments)
    assert_config_roundtrip(loss)
    value = np.asarray(loss(y_true, y_pred))
    if expect_scalar:
        assert value.shape == (), f"{type(loss).__name__} returned shape {value.shape}"
    assert np.all(np.isfinite(value)), f"{type(loss).__name__} returned {value}"
    if fit:
        _loss_fit_checks(loss, np.asarray(y_true), np.asarray(y_pred), reload_same_value)
    return value


def _loss_fit_checks(loss, y_true, y_pred, reload_same_value):
    import keras

    name = type(loss).__name__
    features = np.random.default_rng(0).normal(size=(y_pred.shape[0], 4)).astype("float32")

    def compiled():
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(y_pred.shape[-1])])
        model.compile(optimizer=keras.optimizers.SGD(0.01), loss=loss)
        return model

    model = compiled()
    before = [np.array(w) for w in model.get_weights()]
    history = model.fit(features, y_true, batch_size=len(features), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0]), f"{name}: fit gave {history.history}"
    assert any(not np.allclose(b, a) for b, a in zip(before, model.get_weights())), (
        f"{name}: one fit step left the weights unchanged"
    )
    expected = model.evaluate(features, y_true, batch_size=len(features), verbose=0)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        model.save(path)
        restored = keras.saving.load_model(path)
    assert type(restored.loss) is type(loss), f"{name}: reloaded loss is {type(restored.loss)}"
    got = restored.evaluate(features, y_true, batch_size=len(features), verbose=0)
    assert np.isfinite(got)
    if reload_same_value:
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    with dtype_policy("mixed_float16"):
        history = compiled().fit(features, y_true, batch_size=len(features), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0]), f"{name}: mixed_float16 fit gave {history.history}"


# ---------------------------------------------------------------------------------------------
# class centres


def run_centres_test(make, num_classes, embedding_dim=3, batch_size=7):
    """Shared checks on a centre layer built by ``make()`` (e.g. ``ClassCentres``): config
    complete and round-trips; a training call moves the centres of the batch's classes only and
    returns the centres before the move; the state survives a ``.keras`` save and reload; the
    weight is non-trainable; under ``mixed_float16`` the centres and outputs stay float32."""
    import keras

    layer = make()
    assert_config_complete(layer)
    assert_config_roundtrip(layer)
    emb, labels = head_batch(embedding_dim, num_classes, batch_size, seed=3)
    emb_in = keras.Input((embedding_dim,), name="embeddings")
    lab_in = keras.Input((), dtype="int32", name="labels")
    model = keras.Model([emb_in, lab_in], layer(emb_in, lab_in), name="centres_model")
    start = np.random.default_rng(4).normal(size=(num_classes, embedding_dim)).astype("float32")
    layer.centres.assign(start)
    assert not layer.centres.trainable and layer.trainable_weights == []

    before = np.asarray(layer(emb, labels, training=True))
    np.testing.assert_allclose(before, start[labels], rtol=1e-6)
    moved = ~np.all(np.isclose(np.asarray(layer.centres), start), axis=1)
    assert set(np.flatnonzero(moved)) <= set(labels.tolist()), "a class absent from the batch moved"
    assert moved.any(), "a training call left every centre unchanged"

    restored = assert_keras_roundtrip(model, [emb, labels])
    np.testing.assert_array_equal(
        np.asarray(restored.get_layer(layer.name).centres), np.asarray(layer.centres)
    )

    with dtype_policy("mixed_float16"):
        mixed = make()
        out = mixed(emb.astype("float16"), labels, training=True)
    assert mixed.centres.dtype == "float32" and out.dtype == "float32"
    assert np.all(np.isfinite(np.asarray(mixed.centres)))
    return layer


# ---------------------------------------------------------------------------------------------
# backbones


def run_backbone_test(make, input_shape, batch_size=4):
    """Shared checks on a backbone built by ``make()`` at a small ``input_shape``: the pixel
    normalisation ``(x − 127.5)/128`` is the model's first layer; float32 finite embeddings,
    computed per sample in inference mode; one ``fit`` step (through a ``NormFace`` head) moves
    every trainable weight and keeps a frozen batch-norm scale at 1; ``.keras`` save and reload;
    a ``mixed_float16`` build still returns float32 embeddings."""
    import keras

    from tfface.backbones import FrozenScaleBatchNormalization
    from tfface.heads import NormFace

    x = np.random.default_rng(0).uniform(0, 255, (batch_size,) + tuple(input_shape)).astype("float32")
    model = make()
    dim = model.output.shape[-1]

    normalise = keras.Model(model.input, model.layers[1].output)
    np.testing.assert_allclose(normalise(x), (x - 127.5) / 128.0, rtol=0, atol=1e-6)

    y = np.asarray(model(x, training=False))
    assert y.shape == (batch_size, dim) and y.dtype == np.float32
    assert np.all(np.isfinite(y))
    # Samples are embedded independently in inference mode.
    np.testing.assert_allclose(model(x[:1], training=False), y[:1], rtol=1e-4, atol=1e-4)

    num_classes = 3
    labels = (np.arange(batch_size) % num_classes).astype("int32")
    images_in = keras.Input(tuple(input_shape), name="images")
    labels_in = keras.Input((), dtype="int32", name="labels")
    head = NormFace(num_classes, scale=16.0)
    trainer = keras.Model([images_in, labels_in], head(model(images_in), labels_in))
    trainer.compile(
        optimizer=keras.optimizers.SGD(0.1),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        # One step: tracing the train function costs far more than running it eagerly.
        run_eagerly=True,
    )
    before = [np.array(w) for w in model.trainable_weights]
    history = trainer.fit([x, labels], labels, batch_size=batch_size, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    changed = [not np.array_equal(b, np.array(w)) for b, w in zip(before, model.trainable_weights)]
    assert all(changed), [w.path for w, c in zip(model.trainable_weights, changed) if not c]
    # A frozen batch-norm scale (IResNet's last BN) stays exactly 1.
    for layer in model.layers:
        if isinstance(layer, FrozenScaleBatchNormalization):
            np.testing.assert_array_equal(layer.gamma, np.ones(layer.gamma.shape))

    assert_keras_roundtrip(model, x, atol=1e-5)

    with dtype_policy("mixed_float16"):
        mixed = make()
    out = mixed(x, training=True)
    assert out.dtype == "float32"
    assert np.all(np.isfinite(np.asarray(out)))
    return model
