"""Docs that run: every ```python and ```bash/```sh/```console block of README.md and docs/*.md
is executed, in order, one process per document, in a fresh copy of a small workspace that holds
the files the docs name (synthetic images, TFRecords, pairs, a ``.bin``, a tiny run and its
SavedModel; see :func:`workspace`).

A document controls its blocks with HTML comments, each on its own line directly above the
block's fence (invisible on GitHub, visible in the source):

``<!-- docs-test: skip (REASON) -->``
    the block is not run; REASON (required) says what it needs that cannot exist here (a
    download, a GPU, a server).
``<!-- docs-test: sub OLD => NEW -->``
    run the block with the literal text OLD replaced by NEW (OLD must occur), e.g. a shorter
    training; every change the test makes to a block is written in the document this way.

and, on a line of its own anywhere in the file, ``<!-- docs-test: slow (REASON) -->`` marks
the document's test ``slow``.

Python blocks of one document share one namespace (like a notebook) that starts with those
of :data:`PLACEHOLDERS` its blocks name: the names the docs use for "your data"
(``embeddings``, ``labels``, ``num_classes``, ``images``, ``faces``...). Shell blocks run with
``bash -e -o pipefail`` and a ``tfface`` on ``PATH`` that runs this checkout; ``console`` blocks
run their ``$ `` lines. Blocks in other languages (``text``, ``json``, none) are not run: use
them for signatures, layouts and output.
"""
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import textwrap
import time
import traceback

ROOT = pathlib.Path(__file__).resolve().parents[1]
LANGUAGES = {"python": "python", "py": "python", "bash": "bash", "sh": "bash", "shell": "bash",
             "console": "console"}
DIRECTIVE = re.compile(r"^\s*<!--\s*docs-test:\s*(?P<body>.*?)\s*-->\s*$")
FENCE = re.compile(r"^(?P<indent>\s*)(?P<ticks>```+)(?P<lang>[\w+-]*)\s*$")
# The share of runnable blocks that may be skipped, over all documents (35% today: installs,
# servers, Docker and downloads; every skip names its reason).
MAX_SKIPPED = 0.4

# The names the docs use for the reader's own data. Before a document's first Python block, each
# one that the document's blocks name is defined by its line here (after the lines it needs).
PLACEHOLDERS = [
    ("np", "import numpy as np"),
    ("tfface", "import tfface"),
    ("num_classes", "num_classes = 8"),
    ("embeddings", "embeddings = np.random.default_rng(0).normal(size=(16, 512)).astype('float32')  # (B, D)"),
    ("labels", "labels = np.arange(16, dtype='int32') % 8                        # (B,) class ids"),
    ("images", "images = np.random.default_rng(1).uniform(0, 255, (2, 48, 48, 3)).astype('float32')"),
    ("backbone", "backbone = tfface.backbones.get('tiny', input_shape=(48, 48, 3))"),
    ("head", "head = tfface.heads.ArcFace(8)"),
    ("train_ds", "train_ds = tfface.data.make_dataset('TFR', batch_size=8, image_size=160)  # (images, labels)"),
    ("face_a", "face_a = np.asarray(tfface.data.load_image('faces/a.jpg'))         # aligned uint8 crop, 112x112"),
    ("face_b", "face_b = np.asarray(tfface.data.load_image('faces/b.jpg'))"),
    ("crop_a", "crop_a = np.asarray(tfface.data.load_image('faces/a.jpg'))"),
    ("crop_b", "crop_b = np.asarray(tfface.data.load_image('faces/b.jpg'))"),
    ("faces", "faces = np.stack([tfface.data.load_image(f'faces/{n}.jpg') for n in 'ab'])   # uint8 (N, H, W, 3)"),
    ("images_uint8", "images_uint8 = np.stack([tfface.data.load_image(f'faces/{n}.jpg') for n in 'ab'])"),
    ("images_bytes", "images_bytes, issame = tfface.data.read_bin('faces_emore/lfw.bin')  # 2N encoded, N bools"),
    ("model", "model = tfface.export.load_embedder('runs/ft/embedder.keras')   # a trained embedder"),
    ("threshold", "threshold = 0.3                                      # a cosine threshold from tfface eval"),
]
NEEDS = {"embeddings": ("np",), "labels": ("np",), "images": ("np",), "backbone": ("tfface",),
         "head": ("tfface",), "train_ds": ("tfface",), "face_a": ("np", "tfface"), "face_b": ("np", "tfface"),
         "crop_a": ("np", "tfface"), "crop_b": ("np", "tfface"), "faces": ("np", "tfface"),
         "images_uint8": ("np", "tfface"), "images_bytes": ("tfface",), "model": ("tfface",)}


def _names(code):
    """Every name a block's code object (and the code objects nested in it) loads."""
    out = set(code.co_names)
    for const in code.co_consts:
        if hasattr(const, "co_names"):
            out |= _names(const)
    return out


def _placeholders(codes):
    used = set().union(*(_names(c) for c in codes)) if codes else set()
    wanted = used | {n for name in used for n in NEEDS.get(name, ())}
    return "\n".join(line for name, line in PLACEHOLDERS if name in wanted)


def documents():
    return [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))


class Block:
    def __init__(self, path, line, lang, code, directives):
        self.path, self.line, self.lang, self.code, self.directives = path, line, lang, code, directives

    @property
    def where(self):
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    @property
    def skip_reason(self):
        for kind, arg in self.directives:
            if kind == "skip":
                return arg
        return None

    def runnable_code(self):
        code = self.code
        for kind, arg in self.directives:
            if kind == "sub":
                old, sep, new = arg.partition(" => ")
                if not sep or old not in code:
                    raise ValueError(f"{self.where}: docs-test sub {arg!r}: expected 'OLD => NEW' with OLD in the block")
                code = code.replace(old, new)
        return code


def _directive(text, where):
    m = re.fullmatch(r"(skip|slow)\s*\((.+)\)|(sub)\s+(.+)", text)
    if not m:
        raise ValueError(f"{where}: unknown docs-test directive {text!r}; expected 'skip (REASON)', "
                         "'slow (REASON)' or 'sub OLD => NEW'")
    if m.group(1):
        return m.group(1), m.group(2).strip()
    return m.group(3), m.group(4)


def parse(path):
    """The fenced blocks of a Markdown file: (blocks, file-level directives). Every block is
    returned (``lang`` in :data:`LANGUAGES` for the runnable ones)."""
    lines = path.read_text().split("\n")
    blocks, file_directives, pending = [], [], []
    i = 0
    while i < len(lines):
        where = f"{path.relative_to(ROOT)}:{i + 1}"
        d = DIRECTIVE.match(lines[i])
        if d:
            kind, arg = _directive(d.group("body"), where)
            (file_directives if kind == "slow" else pending).append((kind, arg))
            i += 1
            continue
        fence = FENCE.match(lines[i])
        if fence:
            end = i + 1
            while end < len(lines) and not lines[end].strip().startswith(fence.group("ticks")):
                end += 1
            if end == len(lines):
                raise ValueError(f"{where}: unclosed code fence")
            body = textwrap.dedent("\n".join(lines[i + 1:end]))
            blocks.append(Block(path, i + 1, fence.group("lang").lower(), body, pending))
            pending = []
            i = end + 1
            continue
        if pending and lines[i].strip():
            raise ValueError(f"{where}: docs-test directive {pending} is not directly above a code block")
        i += 1
    return blocks, file_directives


def runnable(blocks):
    return [b for b in blocks if b.lang in LANGUAGES]


# ---------------------------------------------------------------------------------------------
# the workspace the blocks run in


def _make_workspace(root):
    """The files and folders the docs name, small: built once per session, copied per document.
    Each stands in, under the doc's own name, for a download or an earlier step's output."""
    from tfface.backbones import get as get_backbone
    from tfface.data import build_tfrecords, generate_synthetic, read_pairs
    from tfface.data.binwriter import write_bin

    data = root / "data"
    # LFW's protocol: 10 folds (here of one matched and one mismatched pair each).
    generate_synthetic(str(data), num_identities=8, num_test_identities=20, image_size=112, min_images=4,
                       max_images=6, test_images_per_identity=2, folds=10, pairs_per_fold=1)
    test_images = shutil.ignore_patterns("pairs.txt")
    # Aligned training photos (CASIA-WebFace, your own) and their TFRecords.
    for name in ("casia_webface_112", "train_112", "train_160", "my_faces_112"):
        shutil.copytree(data / "train", data / name)
    build_tfrecords(str(data / "train"), str(data / "vggface2_tfrecords"), workers=1, progress=False)
    shutil.copytree(data / "vggface2_tfrecords", root / "TFR")
    # LFW: pairs.txt beside the images (readers.md), aligned crops (data/lfw_112, lfw_160), .bin sets.
    (root / "lfw").mkdir()
    shutil.copytree(data / "test", root / "lfw" / "images", ignore=test_images)
    shutil.copy(data / "test" / "pairs.txt", root / "lfw" / "pairs.txt")
    for aligned in (data / "lfw_112", data / "lfw_160", root / "lfw_160"):
        shutil.copytree(data / "test", aligned, ignore=test_images)
    (root / "DATA_LFW").mkdir()  # as published: pairs.txt beside lfw/<name>/<name>_<nnnn>.jpg
    shutil.copytree(data / "test", root / "DATA_LFW" / "lfw", ignore=test_images)
    shutil.copy(data / "test" / "pairs.txt", root / "DATA_LFW" / "pairs.txt")
    _youtube_faces(data / "test", root / "ytf")
    for name in ("splits.txt", "aligned_images_DB"):
        os.symlink(pathlib.Path("ytf") / name, root / name)
    paths, issame = read_pairs(str(root / "lfw" / "pairs.txt"), str(root / "lfw" / "images"))
    (root / "faces_emore").mkdir()
    for name in ("lfw.bin", "agedb_30.bin"):
        write_bin(str(root / "faces_emore" / name), [pathlib.Path(p).read_bytes() for p in paths], issame)
    (root / "aligned").mkdir()
    (root / "faces").mkdir()
    shutil.copy(paths[0], root / "faces" / "a.jpg")
    shutil.copy(paths[1], root / "faces" / "b.jpg")
    # A tiny model standing in for trained runs.
    embedder = get_backbone("tiny", input_shape=(112, 112, 3))
    for run in ("curricularface_ir100_ms1mv2", "ft", "arcface"):
        (root / "runs" / run).mkdir(parents=True)
        embedder.save(str(root / "runs" / run / "embedder.keras"))
    # `tfface` as the docs call it, running this checkout.
    (root / ".bin").mkdir()
    wrapper = root / ".bin" / "tfface"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m tfface.cli "$@"\n')
    wrapper.chmod(0o755)


def _youtube_faces(test, out):
    """YouTube Faces' layout from identity folders: each image a one-frame video
    ``aligned_images_DB/<name>/<k>/``; ``splits.txt`` with 10 splits of a same and a different pair."""
    names = sorted(d.name for d in test.iterdir() if d.is_dir())
    for name in names:
        for k, image in enumerate(sorted((test / name).iterdir())):
            (out / "aligned_images_DB" / name / str(k)).mkdir(parents=True)
            shutil.copy(image, out / "aligned_images_DB" / name / str(k) / "0001.jpg")
    rows = ["split number, pair number, first name, second name, is same"]
    for split in range(10):
        a, b = names[2 * split], names[2 * split + 1]
        rows.append(f"{split + 1}, {2 * split + 1}, {a}/0, {a}/1, 1")
        rows.append(f"{split + 1}, {2 * split + 2}, {a}/0, {b}/0, 0")
    (out / "splits.txt").write_text("\n".join(rows) + "\n")


# ---------------------------------------------------------------------------------------------
# the runner (this file run as a script, in the workspace)


def _run_blocks(spec_file):
    spec = json.loads(pathlib.Path(spec_file).read_text())
    namespace = {"__name__": "__docs__"}
    # Leading newlines: tracebacks give the document's own line numbers.
    codes = {id(b): compile("\n" * b["first_line"] + b["code"], b["file"], "exec")
             for b in spec["blocks"] if b["lang"] == "python"}
    preamble = _placeholders(list(codes.values()))
    if preamble:
        print("--- placeholders:\n" + preamble, flush=True)
        exec(compile(preamble, "<docs-test placeholders>", "exec"), namespace)
    for block in spec["blocks"]:
        started = time.perf_counter()
        print(f"--- {block['where']} [{block['lang']}]", flush=True)
        try:
            if block["lang"] == "python":
                exec(codes[id(block)], namespace)
            else:
                code = block["code"]
                if block["lang"] == "console":
                    code = "\n".join(line[2:] for line in code.splitlines() if line.startswith("$ "))
                proc = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", code], capture_output=True,
                                      text=True)
                sys.stdout.write(proc.stdout[-4000:])
                if proc.returncode != 0:
                    print(proc.stderr[-6000:])
                    raise RuntimeError(f"exit status {proc.returncode}")
        except BaseException:
            traceback.print_exc(file=sys.stdout)
            print(f"FAILED: the block at {block['where']}", flush=True)
            return 1
        print(f"    ok in {time.perf_counter() - started:.1f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_run_blocks(sys.argv[1]))


# ---------------------------------------------------------------------------------------------
# the tests

import pytest  # noqa: E402


def _doc_params():
    params = []
    for path in documents():
        try:
            _, file_directives = parse(path)
        except ValueError:
            file_directives = []  # reported by test_directives_are_well_formed
        marks = [pytest.mark.slow] if any(k == "slow" for k, _ in file_directives) else []
        params.append(pytest.param(path, marks=marks, id=str(path.relative_to(ROOT))))
    return params


def test_directives_are_well_formed_and_few_blocks_are_skipped():
    total, skipped, reasons = 0, [], {}
    for path in documents():
        blocks, file_directives = parse(path)  # raises on a malformed or stray directive
        for kind, reason in file_directives:
            assert reason.strip(), f"{path}: slow without a reason"
        for block in blocks:
            if block.directives and block.lang not in LANGUAGES:
                raise AssertionError(f"{block.where}: docs-test directive on a block that is not run")
            if block.lang not in LANGUAGES:
                continue
            total += 1
            block.runnable_code()  # every sub applies
            reason = block.skip_reason
            if reason is not None:
                assert len(reason) >= 10, f"{block.where}: a skip needs a reason, got {reason!r}"
                skipped.append(block.where)
                reasons[reason] = reasons.get(reason, 0) + 1
    assert total > 0
    assert len(skipped) <= MAX_SKIPPED * total, f"{len(skipped)} of {total} blocks skipped: {skipped}"


@pytest.fixture(scope="session")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("docs_workspace")
    _make_workspace(root)
    return root


@pytest.mark.parametrize("doc", _doc_params())
def test_doc_blocks_run(doc, workspace, tmp_path):
    blocks = [b for b in runnable(parse(doc)[0]) if b.skip_reason is None]
    if not blocks:
        return
    ws = tmp_path / "ws"
    shutil.copytree(workspace, ws, symlinks=True)
    spec = {"blocks": [dict(where=b.where, lang=LANGUAGES[b.lang], code=b.runnable_code(), file=str(doc),
                            first_line=b.line) for b in blocks]}
    spec_file = tmp_path / "blocks.json"
    spec_file.write_text(json.dumps(spec))
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               PATH=str(ws / ".bin") + os.pathsep + os.environ.get("PATH", ""),
               TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND="tensorflow")
    proc = subprocess.run([sys.executable, str(pathlib.Path(__file__).resolve()), str(spec_file)], cwd=ws,
                          env=env, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-8000:] + proc.stderr[-4000:]
