"""Multi-worker training: two worker processes on 127.0.0.1 train to the same weights as one
process on the same global batch."""
import json
import os
import socket
import subprocess
import sys

import numpy as np
import tensorflow as tf

import multiworker_job
from tfface.training import default_strategy

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_default_strategy_without_cluster_is_single_process():
    strategy = default_strategy(None)
    assert not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
    one_task = {"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker", "index": 0}}
    assert not isinstance(default_strategy(json.dumps(one_task)), tf.distribute.MultiWorkerMirroredStrategy)


def test_two_workers_train_to_the_same_weights_as_one_process(tmp_path):
    workers = [f"127.0.0.1:{p}" for p in free_ports(2)]
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
               TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    procs = []
    for index in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        procs.append(subprocess.Popen(
            [sys.executable, os.path.join(HERE, "multiworker_job.py"), str(tmp_path / f"w{index}.npz")],
            env=dict(env, TF_CONFIG=json.dumps(tf_config)), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True,
        ))
    try:
        outputs = [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (out, err) in zip(procs, outputs):
        assert p.returncode == 0, err[-3000:]
    reference, replicas = multiworker_job.train(tf.distribute.get_strategy())
    assert replicas == 1
    for index in range(2):
        saved = np.load(tmp_path / f"w{index}.npz")
        assert int(saved["replicas"]) == 2
        got = [saved[f"arr_{i}"] for i in range(len(reference))]
        for a, b in zip(reference, got):
            np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
