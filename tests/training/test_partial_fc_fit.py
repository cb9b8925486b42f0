"""FaceModel with a PartialFC head under model.fit: the same weights as the plain head when every
class is kept, learning when sampling, shards in checkpoints, nothing of the head in the embedder."""
import numpy as np
import pytest
import tensorflow as tf

import keras

import tfface
from tfface import heads
from tfface.testing import mirrored_strategy

D_IN, D, C, B = 5, 6, 10, 8


def _data(seed=0, n=2 * B, classes=C, d_in=D_IN):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, size=n).astype("int32")
    x = rng.normal(size=(n, d_in)).astype("float32")
    return x, y


def _backbone(d_in=D_IN, dim=D):
    return keras.Sequential([keras.Input((d_in,)), keras.layers.Dense(dim, name="embedding")])


def _fit(model, x, y, batch=B):
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch, drop_remainder=True)
    return model.fit(ds, epochs=1, verbose=0)


def test_fit_with_every_class_kept_equals_the_plain_head_on_one_device():
    x, y = _data(1)
    kernel = np.random.default_rng(2).normal(size=(D, C)).astype("float32") * 0.5

    reference_backbone = _backbone()
    reference = tfface.FaceModel(reference_backbone, heads.CurricularFace(C, scale=8.0, momentum=0.3))
    # The same algorithm, uncompiled: jit_compile="auto" would run the plain head through XLA,
    # whose fused sums differ from the sharded head's in the last float32 digits.
    reference.compile(optimizer=keras.optimizers.SGD(0.2, momentum=0.9), jit_compile=False)
    reference.head.kernel.assign(kernel)
    initial = [np.array(w) for w in reference_backbone.get_weights()]
    _fit(reference, x, y)

    strategy = mirrored_strategy(2)
    with strategy.scope():
        backbone = _backbone()
        model = tfface.FaceModel(
            backbone, heads.PartialFC(heads.CurricularFace(C, scale=8.0, momentum=0.3), sample_rate=1.0)
        )
        model.compile(optimizer=keras.optimizers.SGD(0.2, momentum=0.9))
    backbone.set_weights(initial)
    model.head.set_kernel(kernel)
    history = _fit(model, x, y)

    np.testing.assert_allclose(np.asarray(model.head.kernel), np.array(reference.head.kernel), rtol=1e-4, atol=1e-5)
    for got, want in zip(backbone.get_weights(), reference_backbone.get_weights()):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    # t is the running mean of cos(theta_y), here ~4e-5: a mean of O(1) cosines summed in another
    # order across the replicas differs by float32 rounding of the summands (~1e-7 absolute).
    np.testing.assert_allclose(float(model.head.head.t.numpy()), float(reference.head.t.numpy()), rtol=1e-5, atol=1e-7)
    assert {"loss", "accuracy", "t", "learning_rate"} <= set(history.history)


def test_sampled_fit_learns_and_checkpoints_restore_the_shards(tmp_path):
    classes, d_in = 300, 12
    rng = np.random.default_rng(0)
    prototypes = rng.normal(size=(classes, d_in)).astype("float32")
    y = rng.integers(0, classes, size=64 * 40).astype("int32")
    x = prototypes[y] + 0.2 * rng.normal(size=(len(y), d_in)).astype("float32")

    strategy = mirrored_strategy(2)
    with strategy.scope():
        model = tfface.FaceModel(
            _backbone(d_in, 16), heads.PartialFC(heads.CosFace(classes, scale=16.0, margin=0.2), sample_rate=0.1)
        )
        model.compile(optimizer=keras.optimizers.SGD(0.5, momentum=0.9))
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(64, drop_remainder=True)
    history = model.fit(ds, epochs=3, verbose=0)
    losses = history.history["loss"]
    assert np.isfinite(losses).all() and losses[-1] < 0.7 * losses[0], losses

    path = tf.train.Checkpoint(model=model).save(str(tmp_path / "ckpt"))
    saved = [np.asarray(model.head.shard(r)) for r in range(2)]
    for r in range(2):
        model.head.shard(r).assign(tf.zeros_like(model.head.shard(r)))
    tf.train.Checkpoint(model=model).restore(path).assert_existing_objects_matched()
    for r in range(2):
        np.testing.assert_array_equal(np.asarray(model.head.shard(r)), saved[r])

    # A .keras file holds the full class matrix, and loads onto another number of replicas.
    model.save(str(tmp_path / "model.keras"))
    restored = keras.saving.load_model(str(tmp_path / "model.keras"))
    assert restored.head.num_shards == 1
    np.testing.assert_array_equal(np.asarray(restored.head.kernel), np.asarray(model.head.kernel))

    # Serving needs only the backbone: nothing of the head is in the embedder.
    names = [v.path for v in model.embedder.weights]
    assert names and not any("shard" in n or "partial_fc" in n for n in names)


def test_partial_fc_needs_sgd_and_softmax_cross_entropy():
    model = tfface.FaceModel(_backbone(), heads.PartialFC(heads.ArcFace(C), sample_rate=0.5))
    with pytest.raises(ValueError, match="SGD"):
        model.compile(optimizer=keras.optimizers.Adam())
    with pytest.raises(ValueError, match="HardMining"):
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss=tfface.losses.HardMining())


def test_a_recipe_with_partial_fc_builds_and_its_run_checkpoint_holds_the_shards(tmp_path):
    """The recipe key partial_fc wraps the head; the run's checkpoint (make_checkpoint, what
    tfface train saves and resumes from) holds the class shards, so a resume restores them."""
    from tfface.recipe import load_recipe
    from tfface.training import build

    recipe = load_recipe("smoke", {"data.image_size": [32, 32], "partial_fc": {"sample_rate": 0.5, "seed": 3}})
    run = build(recipe, check_data=False, num_classes=12, print_fn=lambda *a: None)
    head = run.model.head
    assert isinstance(head, heads.PartialFC) and head.sample_rate == 0.5
    assert isinstance(head.head, heads.CosFace) and head.head.margin == 0.2
    saved = np.array(head.full_value("kernel"))
    path = run.checkpoint.save(str(tmp_path / "ckpt"))
    head.assign_full_value("kernel", np.zeros_like(saved))
    run.checkpoint.restore(path).assert_existing_objects_matched()
    np.testing.assert_array_equal(np.array(head.full_value("kernel")), saved)
