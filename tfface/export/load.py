"""The one model loader of tfface: :func:`load_embedder`, used by evaluation, export and the demo.

It takes what a person has at hand: a training run directory (``WORKDIR/embedder.keras``, what
``tfface train`` writes), a ``.keras`` file (an embedder, or a saved training model whose
``embedder`` is returned), or a SavedModel export directory (``tfface export``'s output).
"""
import importlib
import os

EMBEDDER_FILE = "embedder.keras"
SAVED_MODEL_FILE = "saved_model.pb"

# Packages whose modules register tfface's Keras classes (layers, backbone blocks, heads, losses
# and the training model) on import, so that ``keras.saving.load_model`` finds them by their
# registered names.
_REGISTERING_PACKAGES = ("tfface.backbones", "tfface.layers", "tfface.heads", "tfface.losses", "tfface.training")

_EXPECTED = "a training run directory (holding embedder.keras), a .keras file or a SavedModel directory"


def is_saved_model(path):
    """Whether ``path`` is a SavedModel directory (holds ``saved_model.pb``)."""
    return os.path.isfile(os.path.join(os.fspath(path), SAVED_MODEL_FILE))


def resolve_embedder_path(path):
    """The file or directory :func:`load_embedder` reads for ``path``: ``path/embedder.keras`` for
    a run directory, ``path`` itself for a ``.keras`` file or a SavedModel directory. Raises
    FileNotFoundError / ValueError naming what was expected."""
    path = os.fspath(path)
    if os.path.isdir(path):
        candidate = os.path.join(path, EMBEDDER_FILE)
        if os.path.isfile(candidate):
            return candidate
        if is_saved_model(path):
            return path
        raise FileNotFoundError(
            f"{path!r} holds no {EMBEDDER_FILE} and no {SAVED_MODEL_FILE}; expected a training run "
            f"directory ('tfface train RECIPE --workdir {path}' writes {EMBEDDER_FILE} when training "
            "ends), a .keras file or a SavedModel directory"
        )
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path!r} does not exist; expected {_EXPECTED}")
    if not path.endswith(".keras"):
        raise ValueError(f"{path!r} is not a .keras file; expected {_EXPECTED}")
    return path


def _register_tfface_objects():
    for name in _REGISTERING_PACKAGES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as err:
            # A package missing from a partial install only matters if the model needs its
            # classes; load_model then names the class it cannot find.
            if err.name != name:
                raise


def load_embedder(path):
    """The embedder stored at ``path``.

    * a run directory or a ``.keras`` file -> the embedder ``keras.Model`` (float32 images in
      [0, 255] -> embeddings). A saved training model (one with an ``embedder`` attribute, like
      ``tfface.FaceModel``) is accepted too and its embedder returned.
    * a SavedModel directory -> the loaded SavedModel (``tf.saved_model.load``); its
      ``signatures["serving_default"]`` takes uint8 images, the tfface export contract.
      ``tfface.eval.extract_embeddings`` accepts either.
    """
    model_path = resolve_embedder_path(path)
    if os.path.isdir(model_path):
        import tensorflow as tf

        return tf.saved_model.load(model_path)
    import keras

    _register_tfface_objects()
    model = keras.saving.load_model(model_path, compile=False)
    embedder = getattr(model, "embedder", None)
    return embedder if isinstance(embedder, keras.Model) else model
