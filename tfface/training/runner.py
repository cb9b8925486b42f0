"""``train``: run a recipe to completion in a work directory, resuming where it stopped.

``WORKDIR`` layout::

    recipe.json        the resolved recipe (a rerun with a different recipe is refused)
    checkpoints/       tf.train.CheckpointManager, every checkpoint_every steps and at the end
    logs/              TensorBoard (tensorboard --logdir WORKDIR/logs)
    embedder.keras     the final backbone (images -> embeddings)
    summary.json       final metrics, per-epoch history, throughput

Resume: when ``checkpoints/`` holds a checkpoint, the run restores it (weights, head and centre
state, optimizer and its step, dropout generator states, batches consumed) and continues from
that step, mid-epoch included: the first ``fit`` call then runs the rest of that epoch, so epochs
keep their boundaries. With ``deterministic`` the data order is replayed and the consumed
batches skipped, so the final weights equal an uninterrupted run's.
"""
import json
import math
import os
import shutil
import time

import keras
import tensorflow as tf

from tfface.training.builder import build
from tfface.training.callbacks import NonFiniteLossError, ProgressPrinter, StepCheckpoint, init_from
from tfface.training.distribution import worker_info
from tfface.recipe import RecipeError, load_recipe


def _diff(a, b, prefix=""):
    keys = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        if isinstance(va, dict) and isinstance(vb, dict):
            keys += _diff(va, vb, f"{prefix}{key}.")
        elif va != vb:
            keys.append(f"{prefix}{key}")
    return keys


def _json_roundtrip(value):
    return json.loads(json.dumps(value))


def validation_callback(recipe, log_dir):
    """A ``tfface.eval.VerificationCallback`` over the recipe's ``data.val`` sets (a registered
    verification protocol on its data, an LFW-style pairs.txt with its image root, or an
    insightface .bin), evaluated at every epoch end; None when there are none."""
    if not recipe.data.val:
        return None
    from tfface import registry
    from tfface.data import read_bin, read_pairs
    from tfface.eval import VerificationCallback

    sets = {}
    for i, entry in enumerate(recipe.data.val):
        if entry.protocol is not None:
            key = f"data.val[{i}] ({entry.name})"
            protocol = registry.build("protocol", registry.Component(entry.protocol,
                                                                     dict(entry.options)),
                                      key=key, data=entry.data)
            if getattr(protocol, "task", None) != "verification":
                raise RecipeError(f"{key}: protocol {entry.protocol!r} is an identification "
                                  "benchmark; only verification protocols run during training")
            sets[entry.name] = protocol
            continue
        path = entry.bin if entry.bin is not None else entry.pairs
        if not os.path.isfile(path):
            raise FileNotFoundError(f"data.val[{i}] ({entry.name}): {path!r} not found")
        if entry.bin is not None:
            sets[entry.name] = read_bin(entry.bin)
        else:
            sets[entry.name] = read_pairs(entry.pairs, entry.root, ext=entry.ext)
    return VerificationCallback(sets, log_dir=log_dir, image_size=tuple(recipe.data.image_size))


def train(recipe, workdir, strategy=None, steps=None, progress=True, overrides=None, callbacks=None,
          print_fn=print):
    """Train ``recipe`` in ``workdir`` until its last step; rerunning resumes.

    Args:
        recipe: a name, path, dict or resolved recipe (``load_recipe``).
        workdir: the run directory (created).
        strategy: a ``tf.distribute.Strategy`` (default: TensorFlow's current one; the CLI passes
            ``default_strategy``).
        steps: total steps instead of the recipe's epochs/steps.
        progress: print a line per epoch and at the end.
        overrides: ``key=value`` overrides applied to ``recipe``.
        callbacks: extra Keras callbacks.

    Returns:
        The summary dict also written to ``WORKDIR/summary.json``.

    Raises:
        NonFiniteLossError: the loss became NaN/Inf (the last good checkpoint is kept).
        RecipeError, DataError, FileNotFoundError: before the first step, for a bad recipe/data.
    """
    say = print_fn if progress else (lambda *a, **k: None)
    recipe = load_recipe(recipe, overrides).resolved()
    strategy = strategy or tf.distribute.get_strategy()
    is_chief, task = worker_info(strategy)
    os.makedirs(workdir, exist_ok=True)
    recipe_path = os.path.join(workdir, "recipe.json")
    resolved = _json_roundtrip(recipe.to_dict())
    if os.path.isfile(recipe_path):
        with open(recipe_path) as f:
            previous = json.load(f)
        changed = _diff(previous, resolved)
        if changed:
            raise RecipeError(
                f"{workdir} holds a run of a different recipe (changed: {', '.join(changed)}); "
                "use another --workdir, or the same settings to resume"
            )
    elif is_chief:
        with open(recipe_path, "w") as f:
            json.dump(resolved, f, indent=2)

    run = build(recipe, strategy=strategy, steps=steps,
                data_dir=os.path.join(workdir, "synthetic"), print_fn=say)
    model = run.model
    checkpoint_dir = os.path.join(workdir, "checkpoints")
    # Non-chief workers must take part in saving (variables may need cross-worker reads) but
    # write into a private directory that is removed at the end.
    save_dir = checkpoint_dir if is_chief else os.path.join(workdir, "workers", task, "checkpoints")
    manager = tf.train.CheckpointManager(run.checkpoint, save_dir, max_to_keep=recipe.keep_checkpoints)

    latest = tf.train.latest_checkpoint(checkpoint_dir)
    start = 0
    if latest:
        run.checkpoint.restore(latest).assert_existing_objects_matched()
        start = int(run.step.numpy())
        say(f"resuming from {latest} (step {start}/{run.steps})")
    elif recipe.init_from:
        init_from(model, recipe.init_from, print_fn=say)

    guard = StepCheckpoint(manager, run.step, recipe.checkpoint_every, run.steps)
    if latest:
        guard.last_saved = start
    printer = ProgressPrinter(run.step, run.steps, run.epochs, run.global_batch, print_fn=say)
    all_callbacks = [guard]
    # Validation first so its figures reach TensorBoard and the epoch lines.
    validation = validation_callback(recipe, os.path.join(workdir, "logs") if is_chief else None)
    if validation is not None:
        all_callbacks.append(validation)
    if is_chief:
        all_callbacks.append(keras.callbacks.TensorBoard(
            log_dir=os.path.join(workdir, "logs"), update_freq=max(1, min(100, run.steps_per_epoch)),
        ))
    all_callbacks += list(callbacks or []) + [printer]

    say(
        f"training {recipe.name}: {run.steps} steps ({run.epochs} epochs of "
        f"{run.steps_per_epoch}), global batch {run.global_batch}, {run.num_classes} classes, "
        f"{strategy.num_replicas_in_sync} replica(s); workdir {workdir}"
    )
    began = time.perf_counter()
    step = start
    spe = run.steps_per_epoch
    if step < run.steps and step % spe:
        # Finish the interrupted epoch first so later epochs keep their boundaries.
        epoch = step // spe
        model.fit(run.dataset(step), initial_epoch=epoch, epochs=epoch + 1,
                  steps_per_epoch=min(spe - step % spe, run.steps - step),
                  callbacks=all_callbacks, shuffle=False, verbose=0)
        step = int(run.step.numpy())
    if step < run.steps and guard.failure is None and not model.stop_training:
        model.fit(run.dataset(step), initial_epoch=step // spe, epochs=run.epochs,
                  steps_per_epoch=spe, callbacks=all_callbacks, shuffle=False, verbose=0)
    seconds = time.perf_counter() - began
    if guard.failure is not None:
        raise NonFiniteLossError(guard.failure)
    guard.save()

    final_step = int(run.step.numpy())
    last = printer.history[-1] if printer.history else {}
    trained = final_step - start
    summary = {
        "recipe": recipe.name,
        "workdir": os.path.abspath(workdir),
        "steps": final_step,
        "total_steps": run.steps,
        "resumed_from": start,
        "epochs": run.epochs,
        "steps_per_epoch": run.steps_per_epoch,
        "global_batch": run.global_batch,
        "num_classes": run.num_classes,
        "replicas": strategy.num_replicas_in_sync,
        "strategy": type(strategy).__name__,
        "seconds": seconds,
        "images_per_second": trained * run.global_batch / seconds if seconds > 0 and trained else None,
        "final": {k: v for k, v in last.items() if k not in ("epoch", "step", "seconds", "images_per_second")},
        "history": printer.history,
        "checkpoint": manager.latest_checkpoint,
        "embedder": os.path.join(os.path.abspath(workdir), "embedder.keras"),
        "logs": os.path.join(os.path.abspath(workdir), "logs"),
        "resolved_recipe": resolved,
    }
    if is_chief:
        model.embedder.save(summary["embedder"])
        with open(os.path.join(workdir, "summary.json"), "w") as f:
            json.dump(summary, f, indent=2, default=float)
    else:
        shutil.rmtree(os.path.join(workdir, "workers", task), ignore_errors=True)
    final = "  ".join(f"{k} {v:.4g}" for k, v in summary["final"].items() if isinstance(v, (int, float)))
    ips = summary["images_per_second"]
    say(
        f"done: step {final_step}/{run.steps} in {seconds:.1f}s"
        + (f" ({ips:.1f} img/s)" if ips else "")
        + (f"  {final}" if final else "")
        + f"\nembedder: {summary['embedder']}\nTensorBoard: tensorboard --logdir {summary['logs']}"
    )
    return summary
