"""The MegaFace challenge 1 files as distributed: the devkit's template lists, the FaceScrub probe
images, the MegaFace (Flickr) distractor images, and insightface's optional noise lists.

Layout (one root folder; the alternatives are the names the devkit and insightface's
``megaface_testpack`` use)::

    ROOT/templatelists/ (or ROOT/devkit/templatelists/)
        facescrub_features_list.json                  {"id": [...], "path": [...]}
        megaface_features_list.json_<N>_<set>         {"path": [...]}, N = 10 ... 1000000
    ROOT/FaceScrub/ (or facescrub_images/)            <identity>/<image>, as the list names them
    ROOT/MegaFace/  (or megaface_images/)             <a>/<b>/<image>, as the lists name them
    ROOT/facescrub_noises.txt, ROOT/megaface_noises.txt   (optional, insightface's cleaning)

The devkit appends a feature-file ending to each listed path; here the listed path is the image
itself. When a listed image is absent under its own extension, the same name with another image
extension is used (insightface's aligned test pack stores ``.png``/``.jpg`` crops under the
listed stems); anything still missing is an error that lists the files.

The distractor images of the MegaFace set come with a JSON file beside each image
(``<image>.json``: ``{"bounding_box": {"x", "y", "width", "height"}, "landmarks": {"0": {"x",
"y"}, ...}}``); :func:`align_listed` aligns with those when asked (see its docstring).
"""
import json
import os
import re

from tfface.data.images import IMAGE_EXTENSIONS

__all__ = ["DISTRACTOR_SIZES", "find_megaface", "read_feature_list", "distractor_lists",
           "read_facescrub_noises", "read_megaface_noises", "noise_key", "resolve_images",
           "read_face_json",
           "align_listed"]

#: The distractor-set sizes of the devkit (``run_experiment.py``'s default ``--sizes``).
DISTRACTOR_SIZES = (10, 100, 1000, 10000, 100000, 1000000)

_FACESCRUB_LIST = "facescrub_features_list.json"
_MEGAFACE_LIST = "megaface_features_list.json"


def _first_dir(root, names, what):
    for name in names:
        path = os.path.join(root, name)
        if os.path.isdir(path):
            return path
    raise FileNotFoundError(f"{root}: no {what} folder; expected one of {', '.join(names)}")


def find_megaface(root, templatelists=None, facescrub=None, megaface=None):
    """The MegaFace files under ``root``: ``{"templatelists", "facescrub", "megaface",
    "facescrub_noises", "megaface_noises"}`` (noise entries None when absent). Any folder can be
    given explicitly (absolute, or relative to ``root``)."""
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise FileNotFoundError(f"{root}: not a folder; expected the MegaFace root "
                                "(templatelists/, FaceScrub/, MegaFace/)")

    def pick(given, names, what):
        if given is not None:
            path = os.path.join(root, os.fspath(given))
            if not os.path.isdir(path):
                raise FileNotFoundError(f"{path}: {what} folder does not exist")
            return path
        return _first_dir(root, names, what)

    lists = pick(templatelists, ("templatelists", os.path.join("devkit", "templatelists")),
                 "template-list")
    if not os.path.isfile(os.path.join(lists, _FACESCRUB_LIST)):
        raise FileNotFoundError(f"{lists}: no {_FACESCRUB_LIST} (the devkit's FaceScrub probe "
                                "list)")
    out = {
        "templatelists": lists,
        "facescrub": pick(facescrub, ("FaceScrub", "facescrub_images", "facescrub"),
                          "FaceScrub image"),
        "megaface": pick(megaface, ("MegaFace", "megaface_images", "megaface"), "MegaFace image"),
    }
    for key in ("facescrub_noises", "megaface_noises"):
        path = os.path.join(root, key + ".txt")
        out[key] = path if os.path.isfile(path) else None
    return out


def read_feature_list(path, need_ids=False):
    """A devkit template list: ``(paths, ids)`` (``ids`` None when the file has none)."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not JSON ({e}); expected the devkit's "
                         "{\"path\": [...]} list") from e
    if not isinstance(data, dict) or not isinstance(data.get("path"), list):
        raise ValueError(f"{path}: expected a JSON object with a \"path\" list (the devkit's "
                         "template-list format)")
    paths = [str(p) for p in data["path"]]
    ids = data.get("id")
    if ids is not None:
        if not isinstance(ids, list) or len(ids) != len(paths):
            raise ValueError(f"{path}: \"id\" must be a list as long as \"path\" ({len(paths)})")
        ids = [str(i) for i in ids]
    elif need_ids:
        raise ValueError(f"{path}: no \"id\" list; the FaceScrub list names each image's identity")
    return paths, ids


def distractor_lists(templatelists, set_index=1):
    """``{size: path}`` of the ``megaface_features_list.json_<size>_<set_index>`` files present."""
    pattern = re.compile(re.escape(_MEGAFACE_LIST) + r"_(\d+)_(\d+)$")
    found = {}
    for name in os.listdir(templatelists):
        m = pattern.match(name)
        if m and int(m.group(2)) == int(set_index):
            found[int(m.group(1))] = os.path.join(templatelists, name)
    return dict(sorted(found.items()))


def _noise_lines(path):
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                yield line


def read_facescrub_noises(path):
    """insightface's ``facescrub_noises.txt``: one FaceScrub image file name a line (``#`` lines
    are comments) -> a set of :func:`noise_key` of them (base name without extension: the devkit
    lists ``.jpg`` where test packs hold ``.png``)."""
    return {noise_key(line, 1) for line in _noise_lines(path)}


def read_megaface_noises(path):
    """insightface's ``megaface_noises.txt``: one distractor a line, either ``a/b/image`` or
    ``index<TAB>a/b/image`` -> a set of ``a/b/image`` (the listed paths' last three parts)."""
    out = set()
    for line in _noise_lines(path):
        fields = line.split("\t")
        rel = fields[1] if len(fields) > 1 else fields[0]
        out.add(noise_key(rel, 3))
    return out


def noise_key(path, parts):
    """The last ``parts`` components of ``path``, without the extension: how a listed image is
    matched against the noise lists."""
    return os.path.splitext("/".join(path.replace("\\", "/").split("/")[-parts:]))[0]


def resolve_images(root, rel_paths, source):
    """Absolute paths of the listed images under ``root``; a missing file is looked for under the
    same stem with another image extension. Raises FileNotFoundError naming the missing ones."""
    out, missing = [], []
    exts = tuple(sorted(set(IMAGE_EXTENSIONS) | {e.upper() for e in IMAGE_EXTENSIONS}))
    for rel in rel_paths:
        path = os.path.join(root, rel)
        if not os.path.isfile(path):
            stem = os.path.splitext(path)[0]
            alt = next((stem + e for e in exts if os.path.isfile(stem + e)), None)
            if alt is None:
                missing.append(path)
                continue
            path = alt
        out.append(path)
    if missing:
        shown = "\n  ".join(missing[:20])
        more = f"\n  ... and {len(missing) - 20} more" if len(missing) > 20 else ""
        raise FileNotFoundError(f"{source}: {len(missing)} listed image(s) do not exist under "
                                f"{root}:\n  {shown}{more}")
    return out


def read_face_json(path):
    """The JSON beside a MegaFace image -> ``(box (x, y, w, h) or None,
    landmarks {int: (x, y)})``."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: cannot read the face JSON ({e}); expected "
                         "{\"bounding_box\": {...}, \"landmarks\": {...}}") from e
    box = data.get("bounding_box")
    if box is not None:
        box = tuple(float(box[k]) for k in ("x", "y", "width", "height"))
    marks = {int(k): (float(v["x"]), float(v["y"]))
             for k, v in (data.get("landmarks") or {}).items()}
    return box, marks


def align_listed(paths, out_root, rel_paths, size=112, order=(0, 1, 2, 3, 4)):
    """Align each image with the five landmarks of the JSON beside it (``<image>.json``) onto the
    ArcFace template (``tfface.align.geometry``), writing ``out_root/<rel>.png``; crops already
    present are reused. Returns the crop paths.

    ``order``: the JSON landmark keys of left eye, right eye, nose, left and right mouth corner
    (as seen in the image). An image whose JSON lacks five landmarks is an error naming it
    (align such sets with ``tfface align`` instead)."""
    import numpy as np
    from PIL import Image

    from tfface.align import geometry
    from tfface.data.images import read_image

    template = geometry.arcface_template(size)
    out = []
    for path, rel in zip(paths, rel_paths):
        dst = os.path.join(out_root, os.path.splitext(rel)[0] + ".png")
        out.append(dst)
        if os.path.isfile(dst):
            continue
        meta = path + ".json"
        if not os.path.isfile(meta):
            meta = os.path.splitext(path)[0] + ".json"
        _, marks = read_face_json(meta)
        if not all(k in marks for k in order):
            raise ValueError(f"{meta}: landmarks {sorted(marks)}; aligning needs the five keys "
                             f"{list(order)} (left eye, right eye, nose, mouth corners)")
        pts = np.array([marks[k] for k in order], dtype=np.float64)
        crop, _, _ = geometry.similarity_warp(read_image(path), pts, template, size)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        Image.fromarray(crop).save(dst)
    return out
