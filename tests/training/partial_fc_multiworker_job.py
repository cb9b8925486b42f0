"""One worker of the PartialFC multi-worker test (tests/training/test_partial_fc_multiworker.py).

    python partial_fc_multiworker_job.py OUT_DIR DEVICES_PER_WORKER [FOREIGN_CHECKPOINT]
        # TF_CONFIG in the environment names the cluster

TensorFlow gives a CPU-only worker of ``MultiWorkerMirroredStrategy`` one replica. To stand for
machines with several accelerators, each worker splits its CPU into DEVICES_PER_WORKER logical
devices and the strategy is given those as its local devices (a test-only shim of the strategy's
device discovery; the collectives and the replica numbering are TensorFlow's own).

Two hand-written PartialFC steps (sample_rate 1.0) on the global batches of ``batches()``, each replica's loss share, embedding gradient and logits saved to
``OUT_DIR/steps_<task>.npz``, the trained weights gathered with ``full_value`` to
``OUT_DIR/weights_<task>.npz``, a ``tf.train.Checkpoint`` written (the chief's in
``OUT_DIR/ckpt``, the other workers' in private directories) and restored onto a fresh PartialFC of
the same layout (``OUT_DIR/restored_<task>.npz``). With FOREIGN_CHECKPOINT (one written on another
layout), that is restored onto a fresh PartialFC too (``OUT_DIR/foreign_<task>.npz``). Last, two
steps of ``tfface.FaceModel.fit`` with a PartialFC head (``OUT_DIR/fit_<task>.npz``). The numbers
are compared with an unsharded head in the test. Phase times go to stderr.
"""
import json
import os
import sys
import time

import numpy as np

D, C, GLOBAL_BATCH = 6, 10, 8
LR, MOMENTUM = 0.5, 0.9
HEAD_KWARGS = {"scale": 8.0, "momentum": 0.3}  # CurricularFace: its t and hard negatives are global


def batches():
    out = []
    for seed in (10, 11):
        rng = np.random.default_rng(seed)
        emb = rng.normal(size=(GLOBAL_BATCH, D)).astype("float32")
        labels = rng.integers(0, C, size=GLOBAL_BATCH).astype("int32")
        out.append((emb, labels))
    return out


def kernel():
    return np.random.default_rng(7).normal(size=(D, C)).astype("float32") * 0.5


def strategy_with_local_devices(devices_per_worker):
    import tensorflow as tf
    from tensorflow.python.distribute import collective_all_reduce_strategy as cars

    from tfface.training import default_strategy

    cpus = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(
        cpus[0], [tf.config.LogicalDeviceConfiguration() for _ in range(devices_per_worker)]
    )

    def local_devices(self, cluster_resolver, worker_device):
        return tuple(f"{worker_device}/device:CPU:{i}" for i in range(devices_per_worker)), "CPU"

    cars.CollectiveAllReduceExtended._initialize_local_devices = local_devices
    return default_strategy(os.environ["TF_CONFIG"], timeout_seconds=60)


def new_head(strategy):
    from tfface import heads

    with strategy.scope():
        pfc = heads.PartialFC(heads.CurricularFace(num_classes=C, **HEAD_KWARGS), sample_rate=1.0)
        pfc.build((None, D))
    return pfc


def weights(pfc, strategy):
    """The full matrices (gathered from every worker: a collective) and the head's state."""
    out = {kind: np.asarray(pfc.full_value(kind)) for kind in ("kernel", "momentum")}
    out["t"] = np.asarray(strategy.experimental_local_results(pfc.head.t.value)[0])
    return out


def barrier(strategy):
    import tensorflow as tf

    ones = strategy.run(lambda: tf.constant(1.0))
    return float(strategy.reduce(tf.distribute.ReduceOp.SUM, ones, axis=None))


def train(strategy, pfc):
    import tensorflow as tf

    replicas = strategy.num_replicas_in_sync
    per = GLOBAL_BATCH // replicas

    @tf.function
    def step(emb, labels, i):
        def fn(emb, labels):
            with tf.GradientTape() as tape:
                tape.watch(emb)
                loss, sampled = pfc.train_loss(emb, labels, step=i)
            grads = tape.gradient(loss, [emb, sampled.rows])
            pfc.apply_gradients(sampled, grads[1], learning_rate=LR, momentum=MOMENTUM)
            return loss, grads[0], sampled.logits

        return strategy.run(fn, args=(emb, labels))

    ids = strategy.experimental_local_results(
        strategy.experimental_distribute_values_from_function(lambda ctx: ctx.replica_id_in_sync_group)
    )
    out = {"replicas": replicas, "ids": np.array(ids)}
    for i, (emb, labels) in enumerate(batches()):
        demb = strategy.experimental_distribute_values_from_function(
            lambda ctx, e=emb: tf.constant(e[ctx.replica_id_in_sync_group * per:][:per])
        )
        dlab = strategy.experimental_distribute_values_from_function(
            lambda ctx, l=labels: tf.constant(l[ctx.replica_id_in_sync_group * per:][:per])
        )
        loss, grad, logits = step(demb, dlab, tf.constant(i, tf.int64))
        out[f"loss_{i}"] = np.array([np.asarray(x) for x in strategy.experimental_local_results(loss)])
        out[f"grad_{i}"] = np.stack([np.asarray(x) for x in strategy.experimental_local_results(grad)])
        for r, x in zip(ids, strategy.experimental_local_results(logits)):
            out[f"logits_{i}_{r}"] = np.asarray(x)
    return out


FIT_IN, FIT_LR = 5, 0.2


def fit_data():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2 * GLOBAL_BATCH, FIT_IN)).astype("float32")
    return x, rng.integers(0, C, 2 * GLOBAL_BATCH).astype("int32")


def backbone_weights():
    rng = np.random.default_rng(2)
    return [rng.normal(size=(FIT_IN, D)).astype("float32") * 0.5, rng.normal(size=(D,)).astype("float32") * 0.1]


def fit(strategy, head):
    """``tfface.FaceModel.fit`` for two steps of the global batch with ``head`` (a PartialFC or
    the plain head); returns the backbone's weights, the class matrix (C, D) and t."""
    import keras
    import tensorflow as tf

    import tfface

    with strategy.scope():
        backbone = keras.Sequential([keras.Input((FIT_IN,)), keras.layers.Dense(D, name="embedding")])
        model = tfface.FaceModel(backbone, head())
        model.compile(optimizer=keras.optimizers.SGD(FIT_LR, momentum=MOMENTUM))
    backbone.set_weights(backbone_weights())
    sharded = isinstance(model.head, tfface.heads.PartialFC)
    if sharded:
        model.head.set_kernel(kernel())
    else:
        model.head.kernel.assign(kernel())
    x, y = fit_data()
    model.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(GLOBAL_BATCH), epochs=1, verbose=0)
    out = {f"backbone_{i}": np.asarray(w) for i, w in enumerate(backbone.get_weights())}
    out["kernel"] = np.asarray(model.head.full_value("kernel") if sharded else tf.transpose(model.head.kernel))
    out["t"] = np.asarray((model.head.head if sharded else model.head).t.numpy())
    return out


def _mark(what, start=time.time()):
    print(f"[{time.time() - start:6.1f}s] {what}", file=sys.stderr, flush=True)


def main(out_dir, devices_per_worker, foreign=None):
    import tensorflow as tf

    _mark("imported")

    strategy = strategy_with_local_devices(devices_per_worker)
    task = int(json.loads(os.environ["TF_CONFIG"])["task"]["index"])
    pfc = new_head(strategy)
    _mark("built")
    pfc.set_kernel(kernel())
    np.savez(os.path.join(out_dir, f"steps_{task}.npz"), **train(strategy, pfc))
    _mark("trained")
    np.savez(os.path.join(out_dir, f"weights_{task}.npz"), **weights(pfc, strategy))
    _mark("gathered")
    # Every worker saves (a collective); only the chief's checkpoint is kept.
    where = os.path.join(out_dir, "ckpt" if task == 0 else f"private_{task}", "ckpt")
    saved = tf.train.Checkpoint(head=pfc).save(where)
    barrier(strategy)  # the chief's file is written before anyone reads it
    _mark("saved")
    restores = {"restored": os.path.join(out_dir, "ckpt", os.path.basename(saved))}
    if foreign is not None:
        restores["foreign"] = foreign
    for name, path in restores.items():
        pfc = new_head(strategy)  # the initializer's weights, then the checkpoint's
        tf.train.Checkpoint(head=pfc).restore(path).assert_existing_objects_matched()
        np.savez(os.path.join(out_dir, f"{name}_{task}.npz"), shards=np.array(pfc.local_shards),
                 **weights(pfc, strategy))
        _mark(name)
    from tfface import heads

    def partial_fc():
        return heads.PartialFC(heads.CurricularFace(num_classes=C, **HEAD_KWARGS), sample_rate=1.0)

    np.savez(os.path.join(out_dir, f"fit_{task}.npz"), **fit(strategy, partial_fc))
    _mark("fit")
    print(json.dumps({"task": task, "replicas": strategy.num_replicas_in_sync}))


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else None)
