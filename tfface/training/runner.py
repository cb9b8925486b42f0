"""``train``: run a recipe to completion in a work directory, resuming where it stopped.

``WORKDIR`` layout::

    recipe.json        the resolved recipe (a rerun with a different recipe is refused)
    checkpoints/       tf.train.CheckpointManager, every checkpoint_every steps and at the end
    logs/              TensorBoard (tensorboard --logdir WORKDIR/logs)
    embedder.keras     the final backbone (images -> embeddings)
    summary.json       final metrics, per-epoch history, throughput

Resume: when ``checkpoints/`` holds checkpoints, the run restores the newest one that reads back
whole and matches the model (found by scanning ``ckpt-N.index`` files, so a missing or stale
``checkpoints/checkpoint`` state file does not matter); it says which one, and why it skipped any
newer ones (those are moved to ``checkpoints/unreadable/``, never deleted). It restores weights,
head and centre state, optimizer and its step, dropout generator states and batches consumed,
and continues from that step, mid-epoch included: the first ``fit`` call then runs the rest of
that epoch, so epochs keep their boundaries. With ``deterministic`` the data order is replayed
and the consumed batches skipped, so the final weights equal an uninterrupted run's. A run never
starts again from step 0 over existing checkpoints: when none of them loads it stops (exit 2)
unless ``restart=True`` (``tfface train --restart``), which moves the previous run's outputs
into ``WORKDIR/previous-<UTC time>/`` first.

Safety: the work directory is locked (``tfface.files.DirLock``; a second run on it fails at once,
naming the holder); ``recipe.json`` is written only once the data is opened and the model
built; every file is written atomically (``tfface.files``), a checkpoint under a temporary
name read back before it is renamed into place (:class:`~tfface.training.callbacks.CheckpointStore`).
"""
import errno
import json
import math
import os
import shutil
import time

import keras
import tensorflow as tf

from tfface import files
from tfface.files import InputError, OutputError
from tfface.training.builder import build
from tfface.training.callbacks import (CheckpointStore, NonFiniteLossError, ProgressPrinter, StepCheckpoint,
                                       StepTensorBoard, init_from, list_checkpoints, restore_newest)
from tfface.training.distribution import worker_info
from tfface.recipe import RecipeError, load_recipe

# What a run writes in its work directory: name -> True for a folder, False for a file.
OUTPUTS = {"recipe.json": False, "checkpoints": True, "logs": True, "embedder.keras": False,
           "summary.json": False}


_EXECUTION_KEYS = ("steps_per_execution",)


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



def check_workdir(workdir):
    """Refuse, before anything is written, a work directory that is a file (or a symbolic link
    to something other than a folder) and outputs inside it that are in the way: a symbolic
    link, or a file where a folder belongs and the reverse (:class:`OutputError`, exit 3)."""
    if os.path.lexists(workdir) and not os.path.isdir(workdir):
        what = "a symbolic link to nothing" if os.path.islink(workdir) else "a file, not a folder"
        raise OutputError(errno.ENOTDIR, f"the work directory {workdir} is {what}", workdir)
    for name, folder in OUTPUTS.items():
        path = os.path.join(workdir, name)
        if os.path.islink(path):
            raise OutputError(errno.EEXIST, f"{path} is a symbolic link; tfface train writes "
                              "only real files in its work directory (remove the link)", path)
        if os.path.exists(path) and os.path.isdir(path) != folder:
            want = "a folder" if folder else "a file"
            raise OutputError(errno.EEXIST, f"{path} is in the way: expected {want}", path)


def move_previous_run(workdir):
    """Move a previous run's outputs (recipe.json, checkpoints/, logs/, embedder.keras,
    summary.json) into ``WORKDIR/previous-<UTC time>/``; returns that folder, or None when there
    was nothing to move. Nothing is deleted."""
    present = [name for name in OUTPUTS if os.path.lexists(os.path.join(workdir, name))]
    if not present:
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    target = os.path.join(workdir, f"previous-{stamp}")
    suffix = 1
    while os.path.exists(target):
        suffix += 1
        target = os.path.join(workdir, f"previous-{stamp}-{suffix}")
    try:
        os.mkdir(target)
        for name in present:
            os.replace(os.path.join(workdir, name), os.path.join(target, name))
    except OSError as err:
        err.filename = err.filename or target
        raise OutputError(err.errno, files.describe_os_error(err, "move the previous run to"),
                          target) from err
    return target


def _move_aside(prefixes, folder):
    """Move unreadable checkpoints to ``folder/unreadable/`` (kept for inspection)."""
    aside = os.path.join(folder, "unreadable")
    moved = []
    for prefix in prefixes:
        base = os.path.basename(prefix)
        try:
            os.makedirs(aside, exist_ok=True)
            for name in sorted(os.listdir(folder), key=lambda n: n.endswith(".index")):
                if name == base + ".index" or name.startswith(base + ".data-"):
                    os.replace(os.path.join(folder, name), os.path.join(aside, name))
        except OSError as err:
            err.filename = err.filename or aside
            raise OutputError(err.errno, files.describe_os_error(err, "move an unreadable checkpoint to"),
                              aside) from err
        moved.append(os.path.join(aside, base))
    return moved


def _state_file_note(checkpoint_dir, chosen):
    """Why the state file was not followed, or None when it named the checkpoint restored."""
    state = os.path.join(checkpoint_dir, "checkpoint")
    if not os.path.isfile(state):
        return "the state file checkpoints/checkpoint is missing; checkpoints found by scanning"
    try:
        named = tf.train.get_checkpoint_state(checkpoint_dir)
    except Exception:  # noqa: BLE001 - any parse failure means "unusable"
        named = None
    if named is None or not named.model_checkpoint_path:
        return "the state file checkpoints/checkpoint is unreadable; checkpoints found by scanning"
    path = named.model_checkpoint_path
    if not os.path.isabs(path):
        path = os.path.join(checkpoint_dir, path)
    if os.path.abspath(path) != os.path.abspath(chosen):
        return f"the state file named {os.path.basename(path)}"
    return None


def _save_embedder(model, path):
    """``model.save`` to a temporary ``.keras`` beside ``path``, renamed into place."""
    if os.path.islink(path) or os.path.isdir(path):
        raise OutputError(errno.EEXIST, f"{path} is in the way (a link or a folder)", path)
    folder = os.path.dirname(os.path.abspath(path))
    temp = os.path.join(folder, f".embedder.tmp-{os.getpid()}.keras")
    try:
        model.save(temp)
        with open(temp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except OSError as err:
        err.filename = err.filename or path
        raise OutputError(err.errno, files.describe_os_error(err), path) from err
    finally:
        if os.path.exists(temp):
            os.unlink(temp)


def train(recipe, workdir, strategy=None, steps=None, progress=True, overrides=None, callbacks=None,
          print_fn=print, restart=False, lock=True):
    """Train ``recipe`` in ``workdir`` until its last step; rerunning resumes.

    Args:
        recipe: a name, path, dict or resolved recipe (``load_recipe``).
        workdir: the run directory (created).
        strategy: a ``tf.distribute.Strategy`` (default: TensorFlow's current one; the CLI passes
            ``default_strategy``).
        steps: total steps instead of the recipe's epochs/steps (an integer > 0).
        progress: print a line per epoch and at the end.
        overrides: ``key=value`` overrides applied to ``recipe``.
        callbacks: extra Keras callbacks.
        restart: move a previous run's outputs into ``WORKDIR/previous-<time>/`` and start
            from step 0 (otherwise a run resumes, and refuses to start over checkpoints).
        lock: take ``DirLock`` on the work directory (the chief's; a worker's own folder);
            False when the caller already holds it.

    Returns:
        The summary dict also written to ``WORKDIR/summary.json``.

    Raises:
        NonFiniteLossError: the loss became NaN/Inf (the last good checkpoint is kept).
        RecipeError, DataError, InputError, FileNotFoundError: before the first step, for a bad
            recipe, data set, work directory file or checkpoint.
        OutputError: an output cannot be written (the previous checkpoints are kept).
        LockedError: another process is training in ``workdir``.
    """
    recipe = load_recipe(recipe, overrides).resolved()
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps <= 0):
        raise RecipeError(f"steps: expected an integer > 0, got {steps!r}")
    strategy = strategy or tf.distribute.get_strategy()
    is_chief, task = worker_info(strategy)
    workdir = os.fspath(workdir)
    check_workdir(workdir)
    own = workdir if is_chief else os.path.join(workdir, "workers", task)
    guard = files.DirLock(own, "tfface train") if lock else None
    if guard is not None:
        guard.acquire()
    try:
        return _train(recipe, workdir, strategy, is_chief, task, steps, progress, callbacks,
                      print_fn, restart)
    finally:
        if guard is not None:
            guard.release()


def _train(recipe, workdir, strategy, is_chief, task, steps, progress, callbacks, print_fn, restart):
    say = print_fn if progress else (lambda *a, **k: None)
    warn = print_fn  # what a person must see even with progress off (--quiet)
    if restart and is_chief:
        moved = move_previous_run(workdir)
        if moved:
            warn(f"--restart: the previous run was moved to {moved}")
    recipe_path = os.path.join(workdir, "recipe.json")
    resolved = _json_roundtrip(recipe.to_dict())
    if os.path.isfile(recipe_path):
        try:
            previous = files.read_json(recipe_path, "the run's recipe file")
        except InputError as err:
            raise InputError(f"{err}; restore it, or pass --restart to move the old run aside") from None
        if not isinstance(previous, dict):
            raise InputError(f"the run's recipe file {recipe_path} does not hold a recipe mapping; "
                             "restore it, or pass --restart to move the old run aside")
        # How the steps are run, not what they compute: free to change on a resume (and absent
        # from runs recorded before the key existed).
        changed = [key for key in _diff(previous, resolved) if key not in _EXECUTION_KEYS]
        if changed:
            raise RecipeError(
                f"{workdir} holds a run of a different recipe (changed: {', '.join(changed)}); "
                "use another --workdir, the same settings to resume, or --restart to move the old "
                "run aside"
            )

    run = build(recipe, strategy=strategy, steps=steps,
                data_dir=os.path.join(workdir, "synthetic"), print_fn=say)
    model = run.model
    checkpoint_dir = os.path.join(workdir, "checkpoints")
    # Non-chief workers must take part in saving (variables may need cross-worker reads) but
    # write into a private directory that is removed at the end.
    save_dir = checkpoint_dir if is_chief else os.path.join(workdir, "workers", task, "checkpoints")
    store = CheckpointStore(run.checkpoint, save_dir, recipe.keep_checkpoints)
    if is_chief:
        store.remove_leftovers()

    found = list_checkpoints(checkpoint_dir)
    latest, skipped = restore_newest(run.checkpoint, checkpoint_dir) if found else (None, [])
    for prefix, reason in skipped:
        warn(f"skipping checkpoint {prefix}: {reason}")
    if found and latest is None:
        listed = "; ".join(f"{os.path.basename(p)}: {r}" for p, r in skipped)
        raise InputError(
            f"{checkpoint_dir} holds {len(found)} checkpoint(s) but none loads ({listed}). Nothing "
            "was changed. Pass --restart to move the old run aside and start again from step 0"
        )
    start = 0
    if latest:
        start = int(run.step.numpy())
        note = _state_file_note(checkpoint_dir, latest)
        why = "the newest checkpoint that loads" + (f"; {note}" if note else "")
        (warn if skipped or note else say)(f"resuming from {latest} (step {start}/{run.steps}): {why}")
        if is_chief:
            moved = _move_aside([p for p, _ in skipped], checkpoint_dir)
            if moved:
                warn(f"unreadable checkpoint(s) moved to {os.path.dirname(moved[0])}")
            store.latest_checkpoint = latest
            if note:
                store._write_state()
    elif recipe.init_from:
        init_from(model, recipe.init_from, print_fn=say)

    step_guard = StepCheckpoint(store, run.step, recipe.checkpoint_every, run.steps)
    if latest:
        step_guard.last_saved = start
    printer = ProgressPrinter(run.step, run.steps, run.epochs, run.global_batch, print_fn=say)
    all_callbacks = [step_guard]
    # Validation first so its figures reach TensorBoard and the epoch lines.
    validation = validation_callback(recipe, os.path.join(workdir, "logs") if is_chief else None)
    if validation is not None:
        all_callbacks.append(validation)
    # Validated: data opened, model built, checkpoint chosen. Only now is the recipe recorded.
    if is_chief and not os.path.isfile(os.path.join(workdir, "recipe.json")):
        files.write_json(os.path.join(workdir, "recipe.json"), resolved)
    if is_chief:
        all_callbacks.append(StepTensorBoard(
            model.steps_per_execution, log_dir=os.path.join(workdir, "logs"),
            update_freq=max(1, min(100, run.steps_per_epoch)),
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
    per_call = model.steps_per_execution
    if start % per_call:
        # A checkpoint between two calls' ends (written with another steps_per_execution): as
        # many steps per call as still divide every fit call's length.
        model.steps_per_execution = math.gcd(per_call, start)
        model.train_function = None
    if step < run.steps and step % spe:
        # Finish the interrupted epoch first so later epochs keep their boundaries.
        epoch = step // spe
        model.fit(run.dataset(step), initial_epoch=epoch, epochs=epoch + 1,
                  steps_per_epoch=min(spe - step % spe, run.steps - step),
                  callbacks=all_callbacks, shuffle=False, verbose=0)
        step = int(run.step.numpy())
    if step < run.steps and step_guard.failure is None and not model.stop_training:
        model.fit(run.dataset(step), initial_epoch=step // spe, epochs=run.epochs,
                  steps_per_epoch=spe, callbacks=all_callbacks, shuffle=False, verbose=0)
    seconds = time.perf_counter() - began
    if step_guard.failure is not None:
        raise NonFiniteLossError(step_guard.failure)
    step_guard.save()
    if step_guard.failure is not None:
        raise NonFiniteLossError(step_guard.failure)

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
        "checkpoint": store.latest_checkpoint,
        "embedder": os.path.join(os.path.abspath(workdir), "embedder.keras"),
        "logs": os.path.join(os.path.abspath(workdir), "logs"),
        "resolved_recipe": resolved,
    }
    counter = getattr(run.make_dataset_fn, "skipped", None)
    skipped_images = int(counter.numpy()) if counter is not None else 0
    summary["skipped_images"] = skipped_images
    if is_chief:
        _save_embedder(model.embedder, summary["embedder"])
        files.write_json(os.path.join(workdir, "summary.json"), summary)
    else:
        shutil.rmtree(os.path.join(workdir, "workers", task), ignore_errors=True)
    final = "  ".join(f"{k} {v:.4g}" for k, v in summary["final"].items() if isinstance(v, (int, float)))
    ips = summary["images_per_second"]
    say(
        f"done: step {final_step}/{run.steps} in {seconds:.1f}s"
        + (f" ({ips:.1f} img/s)" if ips else "")
        + (f"  {final}" if final else "")
        + (f"\nskipped {skipped_images} image(s) that are empty, truncated or not images "
           f"(listed by 'tfface build' on the same folder)" if skipped_images else "")
        + f"\nembedder: {summary['embedder']}\nTensorBoard: tensorboard --logdir {summary['logs']}"
    )
    return summary
