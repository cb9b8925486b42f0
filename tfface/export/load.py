"""Find and load the embedder of a training run (``WORKDIR/embedder.keras``) or a ``.keras`` file."""
import importlib
import os

EMBEDDER_FILE = "embedder.keras"

# Packages whose modules register tfface's Keras classes (layers, backbone blocks) on import, so
# that ``keras.saving.load_model`` can find them by their registered names.
_REGISTERING_PACKAGES = ("tfface.backbones", "tfface.layers", "tfface.heads")


def resolve_embedder_path(path):
    """``path`` itself when it is a ``.keras`` file, ``path/embedder.keras`` for a run directory."""
    if os.path.isdir(path):
        candidate = os.path.join(path, EMBEDDER_FILE)
        if not os.path.isfile(candidate):
            raise FileNotFoundError(
                f"{path!r} holds no {EMBEDDER_FILE}; expected a training run directory "
                f"('tfface train RECIPE --workdir {path}' writes it when training ends) or a "
                ".keras file"
            )
        return candidate
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path!r} does not exist; expected a training run directory or a .keras file")
    if not path.endswith(".keras"):
        raise ValueError(f"{path!r} is not a .keras file; expected a training run directory or a .keras file")
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
    """The embedder ``keras.Model`` stored at ``path`` (a run directory or a ``.keras`` file).

    A saved training model (one with an ``embedder`` attribute, like ``tfface.FaceModel``) is
    accepted too and its embedder returned.
    """
    import keras

    model_path = resolve_embedder_path(path)
    _register_tfface_objects()
    model = keras.saving.load_model(model_path, compile=False)
    embedder = getattr(model, "embedder", None)
    return embedder if isinstance(embedder, keras.Model) else model
