"""PartialFC under MultiWorkerMirroredStrategy: two worker processes on 127.0.0.1 with two logical
CPUs each (4 replicas, 4 shards) against the unsharded head on one device (Keras' SGD; a hand-written
step and tfface.FaceModel.fit), and checkpoints across layouts (2 workers × 2 devices ↔ 1 process
with 1 or 2 replicas). The two worker processes run once for the module (about 30 s of CPU each).

The references are an unsharded CurricularFace with keras.optimizers.SGD, and checkpoints
written in this process; nothing here is derived from PartialFC's own code.
"""
import json
import os
import socket
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import partial_fc_multiworker_job as job
from tfface import heads
from tfface.heads import PartialFC
from tfface.testing import mirrored_strategy

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
WORKERS, DEVICES = 2, 2


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _reference():
    """The unsharded head: two SGD-momentum steps on the global batches, eagerly."""
    head = heads.CurricularFace(num_classes=job.C, **job.HEAD_KWARGS)
    head.build((None, job.D))
    head.kernel.assign(job.kernel())
    opt = keras.optimizers.SGD(job.LR, momentum=job.MOMENTUM)
    steps = []
    for emb, labels in job.batches():
        emb = tf.constant(emb)
        with tf.GradientTape() as tape:
            tape.watch(emb)
            logits = head(emb, labels, training=True)
            loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True))
        grads = tape.gradient(loss, [emb, head.kernel.value])
        opt.apply([grads[1]], [head.kernel])
        steps.append({"loss": float(loss), "grad": grads[0].numpy(), "logits": logits.numpy()})
    momentum = [np.array(v) for v in opt.variables if tuple(v.shape) == (job.D, job.C)]
    assert len(momentum) == 1
    return steps, np.array(head.kernel).T, momentum[0].T, float(head.t.numpy())


def _foreign_checkpoint(path):
    """A checkpoint written by one process with one shard, with values of its own."""
    rng = np.random.default_rng(42)
    pfc = PartialFC(heads.CurricularFace(num_classes=job.C, **job.HEAD_KWARGS), sample_rate=1.0)
    pfc.build((None, job.D))
    values = {"kernel": rng.normal(size=(job.C, job.D)).astype("float32"),
              "momentum": rng.normal(size=(job.C, job.D)).astype("float32")}
    for kind, value in values.items():
        pfc.assign_full_value(kind, value)
    pfc.head.t.assign(0.4)
    values["t"] = np.float32(0.4)
    return tf.train.Checkpoint(head=pfc).save(path), values


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("pfc_multiworker")
    foreign_path, foreign = _foreign_checkpoint(str(out / "foreign" / "ckpt"))
    workers = [f"127.0.0.1:{p}" for p in _free_ports(WORKERS)]
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
               TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    procs = []
    for index in range(WORKERS):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        procs.append(subprocess.Popen(
            [sys.executable, os.path.join(HERE, "partial_fc_multiworker_job.py"), str(out), str(DEVICES),
             foreign_path],
            env=dict(env, TF_CONFIG=json.dumps(tf_config)), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True,
        ))
    try:
        outputs = [p.communicate(timeout=300) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (_, err) in zip(procs, outputs):
        assert p.returncode == 0, err[-3000:]
    load = lambda name: [dict(np.load(out / f"{name}_{t}.npz")) for t in range(WORKERS)]  # noqa: E731
    return {"out": out, "foreign": foreign, "steps": load("steps"), "weights": load("weights"),
            "restored": load("restored"), "foreign_restored": load("foreign"), "fit": load("fit")}


def test_sample_rate_one_equals_the_plain_head_across_two_workers(run):
    steps, ref_kernel, ref_momentum, ref_t = _reference()
    shards = {}
    for worker in run["steps"]:
        assert int(worker["replicas"]) == WORKERS * DEVICES
        shards.update({int(r): worker for r in worker["ids"]})
    assert sorted(shards) == list(range(WORKERS * DEVICES))
    per = job.GLOBAL_BATCH // (WORKERS * DEVICES)
    for i, ref in enumerate(steps):
        loss = sum(float(np.sum(w[f"loss_{i}"])) for w in run["steps"])
        np.testing.assert_allclose(loss, ref["loss"], rtol=1e-5, atol=1e-5)
        grad = np.concatenate([w[f"grad_{i}"].reshape(-1, job.D) for w in run["steps"]])
        np.testing.assert_allclose(grad, ref["grad"], rtol=1e-4, atol=1e-5)
        assert grad.shape == (per * len(shards), job.D)
        logits = np.concatenate([shards[r][f"logits_{i}_{r}"] for r in sorted(shards)], axis=1)
        np.testing.assert_allclose(logits, ref["logits"], rtol=1e-4, atol=1e-4)
    for weights in run["weights"]:  # every worker gathers the same full matrices
        np.testing.assert_allclose(weights["kernel"], ref_kernel, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(weights["momentum"], ref_momentum, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(weights["t"], ref_t, rtol=1e-5)


def test_fit_across_two_workers_equals_the_plain_head_in_one_process(run):
    # tfface.FaceModel.fit, two steps of the global batch: backbone, class matrix and t.
    def plain():
        return heads.CurricularFace(num_classes=job.C, **job.HEAD_KWARGS)

    reference = job.fit(tf.distribute.get_strategy(), plain)
    for got in run["fit"]:
        assert sorted(got) == sorted(reference)
        for key, want in reference.items():
            np.testing.assert_allclose(got[key], want, rtol=1e-4, atol=1e-5, err_msg=key)


def test_checkpoint_restores_onto_the_same_layout(run):
    for task, (restored, weights) in enumerate(zip(run["restored"], run["weights"])):
        assert restored["shards"].tolist() == [DEVICES * task + d for d in range(DEVICES)]
        for kind in ("kernel", "momentum", "t"):
            np.testing.assert_array_equal(restored[kind], weights[kind])


def test_checkpoint_of_one_process_restores_onto_two_workers(run):
    for restored in run["foreign_restored"]:
        for kind in ("kernel", "momentum", "t"):
            np.testing.assert_array_equal(restored[kind], run["foreign"][kind])


@pytest.mark.parametrize("replicas", [1, 2])
def test_checkpoint_of_two_workers_restores_onto_one_process(run, replicas):
    path = tf.train.latest_checkpoint(str(run["out"] / "ckpt"))
    assert path is not None
    strategy = mirrored_strategy(replicas) if replicas > 1 else tf.distribute.get_strategy()
    with strategy.scope():
        pfc = PartialFC(heads.CurricularFace(num_classes=job.C, **job.HEAD_KWARGS), sample_rate=1.0)
        pfc.build((None, job.D))
    assert pfc.num_shards == replicas
    tf.train.Checkpoint(head=pfc).restore(path).assert_existing_objects_matched()
    weights = run["weights"][0]
    np.testing.assert_array_equal(np.asarray(pfc.kernel).T, weights["kernel"])
    np.testing.assert_array_equal(np.asarray(pfc.full_value("momentum")), weights["momentum"])
    for t in strategy.experimental_local_results(pfc.head.t.value):
        np.testing.assert_array_equal(np.asarray(t), weights["t"])
