"""Choosing a ``tf.distribute`` strategy.

The library never reads the environment: the command line (``tfface train``) reads ``TF_CONFIG``
and passes it here as ``tf_config``. The cluster is then given to TensorFlow through a
``SimpleClusterResolver``, so ``default_strategy`` behaves the same whether it is called from the
CLI or from Python with an explicit cluster.
"""
import json

import tensorflow as tf


def _parse_tf_config(tf_config):
    if tf_config is None or tf_config == "":
        return None
    if isinstance(tf_config, str):
        try:
            tf_config = json.loads(tf_config)
        except json.JSONDecodeError as err:
            raise ValueError(f"TF_CONFIG is not valid JSON: {err}") from None
    if not isinstance(tf_config, dict) or "cluster" not in tf_config:
        raise ValueError(f"TF_CONFIG must be a JSON object with a 'cluster', got {tf_config!r}")
    return tf_config


def cluster_size(tf_config):
    """Number of training tasks (chief + workers) named in a TF_CONFIG dict or string."""
    config = _parse_tf_config(tf_config)
    if config is None:
        return 1
    cluster = config["cluster"]
    return len(cluster.get("chief", [])) + len(cluster.get("worker", []))


def default_strategy(tf_config=None, timeout_seconds=None):
    """The strategy ``tfface train`` uses.

    * ``MultiWorkerMirroredStrategy`` when ``tf_config`` (the ``TF_CONFIG`` JSON, as a string or
      dict) names more than one task;
    * otherwise ``MirroredStrategy`` over every visible GPU;
    * otherwise (CPU only) TensorFlow's default strategy (one device, no copies).

    ``timeout_seconds`` bounds collective operations in the multi-worker case (so a lost worker
    fails the run instead of hanging it).
    """
    config = _parse_tf_config(tf_config)
    if config is not None and cluster_size(config) > 1:
        task = config.get("task", {})
        if "type" not in task or "index" not in task:
            raise ValueError(f"TF_CONFIG needs a 'task' with 'type' and 'index', got {task!r}")
        resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(
            tf.train.ClusterSpec(config["cluster"]),
            task_type=task["type"],
            task_id=int(task["index"]),
            rpc_layer=config.get("rpc_layer", "grpc"),
        )
        options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=timeout_seconds)
        return tf.distribute.MultiWorkerMirroredStrategy(
            cluster_resolver=resolver, communication_options=options
        )
    gpus = tf.config.list_logical_devices("GPU")
    if gpus:
        return tf.distribute.MirroredStrategy([d.name for d in gpus])
    return tf.distribute.get_strategy()


def worker_info(strategy):
    """``(is_chief, task_name)`` for a strategy: the chief writes checkpoints, logs and the
    final model; other workers write into a private directory."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None):
        return True, "chief"
    task_type, task_id = resolver.task_type, int(resolver.task_id or 0)
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    is_chief = task_type == "chief" or (task_type == "worker" and task_id == 0 and not has_chief)
    return is_chief, f"{task_type}_{task_id}"
