"""Choosing an importer and writing its result (see :mod:`tfface.interop`)."""
import os

from tfface import registry


class ImportError_(ValueError):
    """A checkpoint that cannot be mapped onto a tfface backbone (names the tensor and why)."""


def detect_format(src):
    """The registered importer whose ``meta["detect"](src)`` is true; raises naming the known
    formats when none or several match."""
    names = registry.names("importer")
    matches = []
    for name in names:
        entry = registry.entry("importer", name)
        detect = entry.meta.get("detect")
        if detect is not None and detect(src):
            matches.append(name)
    if len(matches) != 1:
        what = "no importer recognises" if not matches else f"several importers ({', '.join(matches)}) match"
        raise ImportError_(
            f"{what} {src!r}; name one with format= (known: {', '.join(names) or 'none'})"
        )
    return matches[0]


def import_weights(src, out=None, format=None, **options):
    """Import ``src`` with the importer ``format`` (default: detected) and, when ``out`` is
    given, save the embedder there as a ``.keras`` file. Returns the ``keras.Model``."""
    if not os.path.exists(src):
        raise FileNotFoundError(f"{src!r} not found")
    name = format or detect_format(src)
    model = registry.build("importer", registry.Component(name, options), key="importer", src=src)
    if out is not None:
        if not str(out).endswith(".keras"):
            raise ValueError(f"the output is a .keras file, got {out!r}")
        model.save(out)
    return model
