"""One task of the multi-worker test (also used in-process for the single-process reference).

    python multiworker_job.py OUT.npz        # TF_CONFIG in the environment names the cluster
"""
import json
import os
import sys

import numpy as np

GLOBAL_BATCH = 8


def data():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(32, 6)).astype("float32")
    y = (np.arange(32) % 5).astype("int32")
    return x, y


def train(strategy):
    import keras
    import tensorflow as tf

    from tfface.training import FaceModel
    from tfface.heads import CosFace

    with strategy.scope():
        inputs = keras.Input((6,))
        outputs = keras.layers.Dense(4, kernel_initializer=keras.initializers.GlorotUniform(7), name="fc")(inputs)
        head = CosFace(5, scale=4.0, margin=0.2)
        model = FaceModel(keras.Model(inputs, outputs), head, weight_decay=5e-3)
        head.kernel.assign(np.random.default_rng(11).normal(size=(4, 5)).astype("float32"))
        model.compile(keras.optimizers.SGD(0.3, momentum=0.9))
    x, y = data()
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(GLOBAL_BATCH)
    model.fit(ds, epochs=1, steps_per_epoch=4, shuffle=False, verbose=0)
    return [np.array(v) for v in model.trainable_variables], model.distribute_strategy.num_replicas_in_sync


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from tfface.training import default_strategy

    strategy = default_strategy(os.environ["TF_CONFIG"], timeout_seconds=60)
    weights, replicas = train(strategy)
    np.savez(sys.argv[1], replicas=replicas, *weights)
    print(json.dumps({"replicas": replicas}))
