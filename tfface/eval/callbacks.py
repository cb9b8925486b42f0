"""``VerificationCallback``: evaluate verification sets during ``model.fit``."""
import os

import keras
import numpy as np

from tfface.eval.extract import extract_embeddings
from tfface.eval.report import roc_png_bytes
from tfface.eval.verification import verify


def _far_tag(f):
    return f"{f:g}"


class VerificationCallback(keras.callbacks.Callback):
    """Every ``every_n_epochs`` epochs, embed each verification set and run :func:`verify`.

    ``sets``: ``{name: (images, issame)}``, ``images`` holding the 2N images of the N pairs (pair
    i = images 2i and 2i+1) in any form :func:`extract_embeddings` accepts (array, paths,
    encoded bytes — what ``tfface.data.read_pairs`` / ``read_bin`` return); or
    ``{name: protocol}``, a built verification protocol (:mod:`tfface.eval.protocols`, e.g.
    ``registry.build("protocol", "lfw", data=DIR)``), evaluated with its own options (its
    ``far`` and folds) on embeddings extracted with this callback's.

    The model embedded is ``embedder`` if given, else ``model.embedder`` (tfface's FaceModel),
    else the model itself. Results go

    * into the epoch's ``logs`` (so ``History``, the progress bar and later callbacks see them):
      ``{name}_accuracy``, ``{name}_accuracy_std``, ``{name}_auc``, ``{name}_eer`` and
      ``{name}_tar@far={far}``; on skipped epochs the keys are absent, as with Keras'
      ``validation_freq``;
    * with ``log_dir``, to TensorBoard under ``log_dir/verification``: the same scalars as
      ``{name}/accuracy`` etc. at step = epoch, and the ROC curves of all sets as the image
      ``roc``;
    * to ``self.results``: ``{epoch: {name: verify result}}``.
    """

    def __init__(self, sets, every_n_epochs=1, log_dir=None, metric="cosine", flip="none",
                 far=(1e-2, 1e-3), folds=10, batch_size=64, image_size=None, embedder=None,
                 verbose=0):
        super().__init__()
        if not isinstance(sets, dict) or not sets:
            raise ValueError("sets must be a non-empty dict {name: (images, issame)}")
        for name, value in sets.items():
            if callable(getattr(value, "evaluate", None)):
                continue
            if not isinstance(value, (tuple, list)) or len(value) != 2:
                raise ValueError(f"sets[{name!r}] must be a pair (images, issame) or a protocol")
            n_img = len(value[0])
            if n_img != 2 * len(value[1]):
                raise ValueError(f"sets[{name!r}] has {n_img} images for {len(value[1])} pairs; "
                                 "expected 2 images per pair")
        if not isinstance(every_n_epochs, int) or every_n_epochs < 1:
            raise ValueError(f"every_n_epochs must be a positive integer, got {every_n_epochs!r}")
        self.sets = sets
        self.every_n_epochs = every_n_epochs
        self.log_dir = log_dir
        self.metric = metric
        self.flip = flip
        self.far = tuple(far)
        self.folds = folds
        self.batch_size = batch_size
        self.image_size = image_size
        self.embedder = embedder
        self.verbose = verbose
        self.results = {}
        self._writer = None

    def _target(self):
        if self.embedder is not None:
            return self.embedder
        embedder = getattr(self.model, "embedder", None)
        return self.model if embedder is None else embedder

    def evaluate(self):
        """Run every set now; ``{name: verify result}``."""
        out = {}
        for name, value in self.sets.items():
            if callable(getattr(value, "evaluate", None)):
                out[name] = value.evaluate(self._embed)
                continue
            images, issame = value
            emb = self._embed(images)
            out[name] = verify(emb[0::2], emb[1::2], np.asarray(issame), metric=self.metric,
                               folds=self.folds, far=self.far)
        return out

    def _embed(self, images, key=None):
        if isinstance(images, (list, tuple)) and images and all(isinstance(p, str) for p in images):
            # A pairs.txt names each image in several pairs (LFW's 6000 pairs hold 7701 images;
            # the synthetic set's 2000 pairs, 1000): embed each file once.
            unique, where = np.unique(np.asarray(images), return_inverse=True)
            if len(unique) < len(images):
                emb = extract_embeddings(self._target(), list(unique), batch_size=self.batch_size,
                                         image_size=self.image_size, flip=self.flip, progress=False)
                return np.asarray(emb)[where.ravel()]
        return extract_embeddings(self._target(), images, batch_size=self.batch_size,
                                  image_size=self.image_size, flip=self.flip, progress=False)

    def _scalars(self, name, r):
        s = {k: r[k] for k in ("accuracy", "accuracy_std", "auc", "eer") if k in r}
        for f, tar in r.get("tar_at_far", {}).items():
            s[f"tar@far={_far_tag(f)}"] = tar
        return s

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every_n_epochs:
            return
        results = self.evaluate()
        self.results[epoch] = results
        if logs is not None:
            for name, r in results.items():
                for key, value in self._scalars(name, r).items():
                    logs[f"{name}_{key}"] = value
        if self.verbose:
            text = ", ".join(f"{n} {100 * r['accuracy']:.2f}%" for n, r in results.items()
                             if "accuracy" in r)
            print(f"epoch {epoch + 1} verification: {text}")
        if self.log_dir:
            self._write_summaries(epoch, results)

    def _write_summaries(self, epoch, results):
        import tensorflow as tf

        if self._writer is None:
            self._writer = tf.summary.create_file_writer(
                os.path.join(self.log_dir, "verification"))
        with self._writer.as_default(step=epoch):
            for name, r in results.items():
                for key, value in self._scalars(name, r).items():
                    if value is not None and np.isfinite(value):
                        tf.summary.scalar(f"{name}/{key}", value)
            png = roc_png_bytes(results, title=f"ROC, epoch {epoch + 1}")
            tf.summary.image("roc", tf.io.decode_png(png, channels=4)[None])
        self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None
