"""Step checkpoints, the non-finite-loss guard, progress lines, and loading another run's weights.

Why not Keras' ``BackupAndRestore``: it resumes at epoch starts only and, by default, deletes its
backup when ``TerminateOnNaN`` stops training. ``StepCheckpoint`` instead saves every N steps
(a ``tf.train.CheckpointManager``: backbone, head and centre variables, the optimizer with its
step, the random-generator states of dropout layers, and the number of batches consumed), never
saves a non-finite model, and stops the run on the first step whose loss is NaN or Inf.

Checkpoints (:class:`CheckpointStore`) are ``checkpoints/ckpt-STEP.index`` + ``.data-*`` files.
Each is written under a hidden temporary name, read back whole (TensorFlow checks every tensor's
CRC32C), then renamed into place, data files first and the index last, so a ``ckpt-N.index``
only exists for a complete checkpoint; the ``checkpoint`` state file is rewritten atomically
(``tfface.files``). Rotation keeps the newest ``keep`` checkpoints and never deletes the one just
written. A resume (:func:`restore_newest`) finds checkpoints by scanning the index files, not
through the state file, and restores the newest one that reads back and matches the model.
"""
import errno
import math
import os
import re
import time

import keras
import numpy as np
import tensorflow as tf

from tfface import files


class NonFiniteLossError(FloatingPointError):
    """Training stopped because the loss became NaN or Inf."""


CHECKPOINT_RE = re.compile(r"ckpt-(\d+)\.index")
_TEMP_RE = re.compile(r"\.ckpt-\d+\.tmp-")


def list_checkpoints(folder):
    """``[(step, prefix)]`` of the checkpoints in ``folder``, newest first, found by scanning
    for ``ckpt-STEP.index`` files (the ``checkpoint`` state file is not needed)."""
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    found = []
    for name in names:
        match = CHECKPOINT_RE.fullmatch(name)
        if match:
            found.append((int(match.group(1)), os.path.join(folder, name[: -len(".index")])))
    return sorted(found, reverse=True)


def _first_line(err):
    text = getattr(err, "message", None) or str(err) or type(err).__name__
    return text.strip().splitlines()[0][:300] if text.strip() else type(err).__name__


def verify_checkpoint(prefix):
    """None when every tensor of the checkpoint at ``prefix`` reads back (TensorFlow checks each
    tensor's CRC32C and size as it reads), else the reason it does not."""
    try:
        reader = tf.train.load_checkpoint(prefix)
        for key in reader.get_variable_to_shape_map():
            reader.get_tensor(key)
    except Exception as err:  # noqa: BLE001 - the reader raises OpError, IndexError, ValueError...
        return f"unreadable ({_first_line(err)})"
    return None


def _errno_of(err):
    if isinstance(err, OSError) and err.errno:
        return err.errno
    text = _first_line(err).lower()
    for needle, code in (("no space", errno.ENOSPC), ("quota", errno.EDQUOT),
                         ("file too large", errno.EFBIG), ("permission denied", errno.EACCES),
                         ("read-only", errno.EROFS), ("not a directory", errno.ENOTDIR)):
        if needle in text:
            return code
    return errno.EIO


class CheckpointStore:
    """Writes, lists and rotates the checkpoints of one folder (the interface of the
    ``tf.train.CheckpointManager`` it replaces: ``save(checkpoint_number)``,
    ``latest_checkpoint``), so that no failure leaves a half-written ``ckpt-N`` or loses the
    last good one.

    Args:
        checkpoint: the ``tf.train.Checkpoint`` (:func:`make_checkpoint`).
        folder: the checkpoint folder (created on the first save).
        keep: how many checkpoints rotation keeps (>= 1).
    """

    def __init__(self, checkpoint, folder, keep):
        if int(keep) < 1:
            raise ValueError(f"keep: expected an integer >= 1, got {keep!r}")
        self.checkpoint = checkpoint
        self.folder = os.fspath(folder)
        self.keep = int(keep)
        # Created now (``Checkpoint.write`` does not create it, ``restore`` expects it), so every
        # checkpoint holds the same objects as a ``CheckpointManager``'s did.
        if hasattr(checkpoint, "save_counter"):
            checkpoint.save_counter  # noqa: B018 - the property creates the variable
        newest = list_checkpoints(self.folder)
        self.latest_checkpoint = newest[0][1] if newest else None

    def remove_leftovers(self):
        """Delete temporary files of a save that was interrupted (call while holding the run's
        lock: no other process is writing here)."""
        try:
            names = os.listdir(self.folder)
        except OSError:
            return []
        gone = []
        for name in names:
            if _TEMP_RE.match(name) and files.remove(os.path.join(self.folder, name)):
                gone.append(name)
        return gone

    def save(self, checkpoint_number):
        """Write ``ckpt-<checkpoint_number>``; returns its prefix.

        Raises:
            tfface.files.OutputError: it cannot be written or does not read back (full disk,
                permissions); the previous checkpoints and the state file are untouched."""
        from tfface.files import OutputError, _fsync_dir, describe_os_error

        step = int(checkpoint_number)
        final = os.path.join(self.folder, f"ckpt-{step}")
        temp_name = f".ckpt-{step}.tmp-{os.getpid()}"
        temp = os.path.join(self.folder, temp_name)
        try:
            os.makedirs(self.folder, exist_ok=True)
            if hasattr(self.checkpoint, "save_counter"):
                self.checkpoint.save_counter.assign_add(1)
            self.checkpoint.write(temp)
            problem = verify_checkpoint(temp)
            if problem is not None:
                raise OSError(errno.EIO, f"the checkpoint written does not read back: {problem}")
            if os.path.exists(final + ".index"):
                os.unlink(final + ".index")
            datas = sorted(n for n in os.listdir(self.folder) if n.startswith(temp_name + ".data-"))
            for name in datas:
                os.replace(os.path.join(self.folder, name), final + name[len(temp_name):])
            os.replace(temp + ".index", final + ".index")
        except (OSError, tf.errors.OpError) as err:
            self.remove_leftovers()
            code = _errno_of(err)
            why = describe_os_error(OSError(code, os.strerror(code) if code != errno.EIO
                                            else _first_line(err), final), "write the checkpoint")
            kept = (f"; the previous checkpoints are kept (newest: {self.latest_checkpoint})"
                    if self.latest_checkpoint else "")
            raise OutputError(code, why + kept, final) from None
        _fsync_dir(self.folder)
        self.latest_checkpoint = final
        self._rotate(step)
        self._write_state()
        return final

    def _rotate(self, step):
        """Delete checkpoints older than the newest ``keep``; never the one just written nor any
        newer one."""
        older = [(s, p) for s, p in list_checkpoints(self.folder) if s < step]
        for _, prefix in older[self.keep - 1:]:
            folder, base = os.path.split(prefix)
            for name in os.listdir(folder):
                if name == base + ".index":
                    continue
                if name.startswith(base + ".data-"):
                    _quiet_unlink(os.path.join(folder, name))
            # The index goes last: a checkpoint without its index is invisible, never half there.
            _quiet_unlink(prefix + ".index")

    def _write_state(self):
        """The ``checkpoint`` state file (what ``tf.train.latest_checkpoint`` reads), written
        atomically: the newest checkpoint and the ones kept, paths relative to the folder."""
        from tfface.files import atomic_write

        kept = sorted(list_checkpoints(self.folder))
        names = [os.path.basename(p) for _, p in kept]
        newest = os.path.basename(self.latest_checkpoint)
        lines = [f'model_checkpoint_path: "{newest}"'] + [
            f'all_model_checkpoint_paths: "{name}"' for name in names]
        atomic_write(os.path.join(self.folder, "checkpoint"), "\n".join(lines) + "\n")


def _quiet_unlink(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def restore_newest(checkpoint, folder):
    """Restore the newest checkpoint of ``folder`` that reads back whole and matches
    ``checkpoint``'s objects.

    Returns:
        ``(prefix or None, skipped)``: the checkpoint restored, and ``[(prefix, reason)]`` for
        each newer one that was passed over (unreadable, truncated, or of another model)."""
    skipped = []
    for _, prefix in list_checkpoints(folder):
        reason = verify_checkpoint(prefix)
        if reason is None:
            try:
                checkpoint.restore(prefix).assert_existing_objects_matched()
                return prefix, skipped
            except Exception as err:  # noqa: BLE001 - AssertionError, OpError, ValueError...
                reason = f"does not match this run's model ({_first_line(err)})"
        skipped.append((prefix, reason))
    return None, skipped


def make_checkpoint(model, step):
    """A ``tf.train.Checkpoint`` of everything a resumed run needs.

    Variables are tracked as ordered lists per part (not through Keras' object graph, which
    does not reach the layers inside a functional backbone), so the same recipe always maps to
    the same checkpoint keys: ``backbone/i``, ``head/i``, ``centres/j/i``, plus whatever the
    head declares in ``checkpoint_objects()`` (a sharded head's class shards).
    """
    return tf.train.Checkpoint(
        backbone=list(model.backbone.variables),
        head=list(model.head.variables),
        centres=[list(layer.variables) for layer in model.class_centres],
        optimizer=model.optimizer,
        step=step,
        **model.head.checkpoint_objects(),
    )


def _all_finite(variables):
    for variable in variables:
        value = variable.numpy() if hasattr(variable, "numpy") else np.asarray(variable)
        if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
            return False
    return True


class StepCheckpoint(keras.callbacks.Callback):
    """Counts steps, saves every ``every`` steps and at ``total_steps``, stops at ``total_steps``,
    and stops on a non-finite loss (``self.failure`` then holds the message; the caller raises
    ``NonFiniteLossError``).

    Args:
        manager: a :class:`CheckpointStore` (or ``tf.train.CheckpointManager``) over
            ``make_checkpoint(model, step)``, or None to only count and guard.
        step: an int64 ``tf.Variable``: batches consumed so far (the data position). It is
            separate from ``optimizer.iterations``, which does not advance on the steps that
            mixed precision skips.
        every: checkpoint period in steps.
        total_steps: the run's length; the run stops there.
    """

    def __init__(self, manager, step, every, total_steps):
        super().__init__()
        self.manager = manager
        self.step = step
        self.every = int(every)
        self.total_steps = int(total_steps)
        self.failure = None
        self.last_saved = None

    def save(self):
        step = int(self.step.numpy())
        if self.manager is None or self.last_saved == step:
            return
        if not _all_finite(self.model.variables):
            self.failure = (
                f"non-finite weights at step {step}: checkpoint not written; the last good "
                f"checkpoint is {self.manager.latest_checkpoint}"
            )
            self.model.stop_training = True
            return
        self.manager.save(checkpoint_number=step)
        self.last_saved = step

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = int(self.step.numpy())
        self._last_batch = -1

    def on_train_batch_end(self, batch, logs=None):
        # ``batch`` is the index, in this fit call's epoch, of the last batch the call ran: one
        # step, or ``steps_per_execution`` steps (Keras then calls this once per execution).
        # The position follows from it, without reading the variable back every step.
        if getattr(self, "_last_batch", None) is None:  # called outside fit's epoch loop
            self._epoch_start = int(self.step.numpy()) - int(batch)
            self._last_batch = int(batch) - 1
        previous = self._epoch_start + self._last_batch + 1
        step = self._epoch_start + int(batch) + 1
        self._last_batch = int(batch)
        self.step.assign(step)
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            latest = self.manager.latest_checkpoint if self.manager is not None else None
            self.failure = (
                f"loss became {float(loss)} at step {step}; training stopped. "
                + (f"The last good checkpoint is {latest}." if latest else "No checkpoint was written.")
                + " Lower the learning rate, the margin or the scale, or add warm-up."
            )
            self.model.stop_training = True
            return
        # A multiple of ``every`` reached in this call (every step, or steps_per_execution).
        if step // self.every > previous // self.every or step >= self.total_steps:
            self.save()
        if step >= self.total_steps:
            self.model.stop_training = True


class StepTensorBoard(keras.callbacks.TensorBoard):
    """Keras' TensorBoard callback with its batch axis in training steps under
    ``steps_per_execution``: Keras calls the batch hooks once per call, and TensorBoard counts
    calls. ``update_freq`` (steps) is rounded to a multiple of the steps per call, the steps at
    which logs exist."""

    def __init__(self, steps_per_execution=1, update_freq="epoch", **kwargs):
        self.steps_per_call = int(steps_per_execution)
        if isinstance(update_freq, int) and not isinstance(update_freq, bool):
            update_freq = self.steps_per_call * max(1, round(update_freq / self.steps_per_call))
        super().__init__(update_freq=update_freq, **kwargs)

    def on_train_batch_begin(self, batch, logs=None):
        # Keras' hook adds 1 to the batch counter: the call's other steps first.
        self._global_train_batch += self.steps_per_call - 1
        super().on_train_batch_begin(batch, logs)


class ProgressPrinter(keras.callbacks.Callback):
    """One line per epoch (and one every ``interval`` seconds inside long epochs): step, the
    logged values and training images per second."""

    def __init__(self, step, total_steps, epochs, global_batch, interval=30.0, print_fn=print):
        super().__init__()
        self.step = step
        self.total_steps = total_steps
        self.epochs = epochs
        self.global_batch = global_batch
        self.interval = interval
        self.print_fn = print_fn
        self.history = []
        self.images_per_second = None
        self._compile_start = None
        self._batches_begun = 0

    @staticmethod
    def _format(logs):
        parts = []
        for key, value in (logs or {}).items():
            value = float(value)
            parts.append(f"{key} {value:.4g}")
        return "  ".join(parts)

    def on_train_begin(self, logs=None):
        # The first step traces and compiles the step function: a silent pause of 20-50 s on a CPU.
        self._compile_start = time.perf_counter()
        self.print_fn("compiling the training step (first step; 20-50 s on a CPU)...")

    def on_train_batch_begin(self, batch, logs=None):
        self._batches_begun += 1
        if self._batches_begun == 2:
            self._report_compiled()

    def _report_compiled(self):
        if self._compile_start is not None:
            self.print_fn(f"compiled in {time.perf_counter() - self._compile_start:.1f}s")
            self._compile_start = None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.perf_counter()
        self._epoch_step0 = int(self.step.numpy())
        self._last_print = self._epoch_start

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        if now - self._last_print >= self.interval:
            self._last_print = now
            step = int(self.step.numpy())
            self.print_fn(f"  step {step}/{self.total_steps}  {self._format(logs)}")

    def on_epoch_end(self, epoch, logs=None):
        self._report_compiled()
        seconds = time.perf_counter() - self._epoch_start
        steps = int(self.step.numpy()) - self._epoch_step0
        rate = steps * self.global_batch / seconds if seconds > 0 and steps > 0 else float("nan")
        self.images_per_second = rate
        record = {"epoch": epoch + 1, "step": int(self.step.numpy())}
        record.update({k: float(v) for k, v in (logs or {}).items()})
        record["images_per_second"] = rate
        record["seconds"] = seconds
        self.history.append(record)
        self.print_fn(
            f"epoch {epoch + 1}/{self.epochs}  step {record['step']}/{self.total_steps}  "
            f"{self._format(logs)}  {rate:.1f} img/s  {seconds:.1f}s"
        )


# ---------------------------------------------------------------------------------------------
# restoring


def latest_checkpoint(path):
    """The newest checkpoint of a run directory (``WORKDIR`` or ``WORKDIR/checkpoints``) or a
    checkpoint prefix; None when there is none."""
    if path is None:
        return None
    for candidate in (os.path.join(path, "checkpoints"), path):
        if os.path.isdir(candidate):
            scanned = list_checkpoints(candidate)
            if scanned:
                return scanned[0][1]
            found = tf.train.latest_checkpoint(candidate)
            if found:
                return found
    if tf.io.gfile.exists(path + ".index"):
        return path
    return None


def init_from(model, path, print_fn=print):
    """Load another run's weights before training (the Minimum Margin paper's scheme 5 starts
    from the Centre scheme's model).

    The backbone must match exactly; the head and each centre layer are loaded when their
    variables have the same shapes (e.g. same number of classes) and skipped otherwise. The
    optimizer and step are not loaded: the new run starts at step 0.
    A ``.keras`` embedder (a run's ``embedder.keras``, or ``tfface import``'s output from
    third-party weights) loads the backbone only.
    Returns the names of the parts loaded.
    """
    if path is not None and str(path).endswith(".keras"):
        return _init_from_embedder(model, path, print_fn)
    from tfface.files import InputError

    checkpoint_path = latest_checkpoint(path)
    if checkpoint_path is None:
        raise FileNotFoundError(f"init_from: no checkpoint found at {path!r}")
    problem = verify_checkpoint(checkpoint_path)
    if problem is not None:
        raise InputError(f"init_from: the checkpoint {checkpoint_path} is {problem}")
    shapes = tf.train.load_checkpoint(checkpoint_path).get_variable_to_shape_map()

    def saved_shapes(prefix, count):
        out = []
        for i in range(count):
            key = f"{prefix}/{i}/.ATTRIBUTES/VARIABLE_VALUE"
            if key not in shapes:
                return None
            out.append(tuple(shapes[key]))
        if f"{prefix}/{count}/.ATTRIBUTES/VARIABLE_VALUE" in shapes:
            return None
        return out

    def matches(prefix, variables):
        return saved_shapes(prefix, len(variables)) == [tuple(v.shape) for v in variables]

    backbone = list(model.backbone.variables)
    if not matches("backbone", backbone):
        raise InputError(
            f"init_from: the backbone in {checkpoint_path} does not match this recipe's backbone "
            "(different architecture or embedding size)"
        )
    parts = {"backbone": backbone}
    head = list(model.head.variables)
    if matches("head", head):
        parts["head"] = head
    loaded_centres = []
    for j, layer in enumerate(model.class_centres):
        variables = list(layer.variables)
        loaded_centres.append(variables if matches(f"centres/{j}", variables) else [])
    if any(loaded_centres):
        parts["centres"] = loaded_centres
    tf.train.Checkpoint(**parts).restore(checkpoint_path).expect_partial()
    names = ["backbone"] + (["head"] if "head" in parts else []) + (
        ["centres"] if "centres" in parts else []
    )
    print_fn(f"init_from: loaded {', '.join(names)} from {checkpoint_path}")
    return names


def _init_from_embedder(model, path, print_fn=print):
    """The backbone's weights (moving statistics included) from a ``.keras`` embedder file."""
    import zipfile

    from tfface.files import InputError

    if not os.path.isfile(path):
        raise FileNotFoundError(f"init_from: no .keras file at {path!r}")
    try:
        embedder = keras.models.load_model(path, compile=False)
    except (zipfile.BadZipFile, ValueError, OSError, KeyError, EOFError, TypeError) as err:
        raise InputError(f"init_from: {path} is not a readable .keras model (truncated or not a "
                         f"Keras file: {_first_line(err)})") from None
    target = list(model.backbone.weights)
    source = list(embedder.weights)
    if [(w.name, tuple(w.shape)) for w in source] != [(w.name, tuple(w.shape)) for w in target]:
        raise InputError(
            f"init_from: the embedder in {path} does not match this recipe's backbone "
            "(different architecture or embedding size)"
        )
    for dst, src in zip(target, source):
        dst.assign(src)
    print_fn(f"init_from: loaded backbone from {path}")
    return ["backbone"]
