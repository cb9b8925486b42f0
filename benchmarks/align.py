"""Alignment throughput: images/s per core of ``tfface align`` on full-size photos (goal >= 10).

The photos are the real ones that packages ship: scikit-image's astronaut and camera and
matplotlib's grace_hopper.jpg (one face each), scikit-image's chelsea and coffee (no face),
upscaled (bicubic) to ``--megapixels`` (default 1.5: a typical full-size portrait of a face data
set) and written as JPEG (quality 95) into a temporary folder, ``--copies`` of each (every other
copy mirrored). Each configuration aligns the whole folder with :func:`tfface.align.align_folder`
end to end (read and decode the JPEG, detect, warp, write the 112×112 JPEG), in this process with
one TensorFlow thread, so its images/s is per core (also printed: images per CPU second of the
process and its workers, the per-core figure a loaded machine cannot show in wall-clock time):

* ``before``: MTCNN on the full-resolution photo, one image at a time, networks run eagerly
  layer by layer (what ``tfface align`` did before ``detect_size``); on one copy of each photo
  only (it is slow);
* full resolution with compiled networks and batches; the default (copy shrunk to 320 px,
  batches of 8, compiled networks), one at a time and batched;
* ``--workers`` processes (default: all cores) on the default settings: total images/s divided
  by the cores, process start-up (TensorFlow import, MTCNN build) included.

Every configuration must report the same outcome (faces found in the three portraits, the two
faceless photos listed as ``no_face``); the script checks this. Writes nothing outside a
temporary folder.

    nice -n 5 python benchmarks/align.py            # about 2-4 minutes on 2 cores
    python benchmarks/align.py --quick              # one copy each, no workers run
"""
import argparse
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

FACES = ("astronaut", "camera", "grace_hopper")
FACELESS = ("chelsea", "coffee")


def real_photos():
    import matplotlib.cbook
    import numpy as np
    import skimage.data
    from PIL import Image

    with Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)) as im:
        grace = np.asarray(im.convert("RGB"))
    return {
        "astronaut": skimage.data.astronaut(),
        "camera": np.stack([skimage.data.camera()] * 3, axis=-1),
        "grace_hopper": grace,
        "chelsea": skimage.data.chelsea(),
        "coffee": skimage.data.coffee(),
    }


def write_folder(folder, megapixels, copies):
    from PIL import Image, ImageOps

    os.makedirs(folder, exist_ok=True)
    sizes = {}
    for name, image in real_photos().items():
        h, w = image.shape[:2]
        s = (megapixels * 1e6 / (h * w)) ** 0.5
        big = Image.fromarray(image).resize((round(w * s), round(h * s)), Image.BICUBIC)
        sizes[name] = big.size
        for c in range(copies):
            (ImageOps.mirror(big) if c % 2 else big).save(os.path.join(folder, f"{name}_{c}.jpg"), quality=95)
    return sizes


def check(report, copies, label):
    found, none = report["methods"]["detected"], report["skipped"]["no_face"]
    if found != len(FACES) * copies or none != len(FACELESS) * copies or report["unaccounted"]:
        raise SystemExit(f"{label}: detected {found}, no_face {none}: expected {len(FACES) * copies} "
                         f"and {len(FACELESS) * copies}")


def _cpu_seconds():
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(src, dst, copies, label, **kwargs):
    """(images per wall-clock second, images per CPU second of this process and its finished
    children)."""
    from tfface.align import align_folder

    start, cpu = time.perf_counter(), _cpu_seconds()
    report = align_folder(src, dst, progress=False, **kwargs)
    seconds, cpu = time.perf_counter() - start, _cpu_seconds() - cpu
    check(report, copies, label)
    return report["seen"] / seconds, report["seen"] / cpu


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megapixels", type=float, default=1.5)
    parser.add_argument("--copies", type=int, default=8, help="copies of each of the 5 photos (default 8: 40 images)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeats", type=int, default=2, help="measurements of each configuration; median kept")
    parser.add_argument("--quick", action="store_true", help="one copy of each photo, one repeat, no workers run")
    args = parser.parse_args(argv)
    copies = 1 if args.quick else args.copies
    repeats = 1 if args.quick else args.repeats

    import numpy as np
    import tensorflow as tf

    # One thread: images/s of this process is images/s per core.
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from mtcnn import MTCNN

    from tfface.align.aligner import DEFAULT_DETECT_SIZE, compile_detector

    with tempfile.TemporaryDirectory() as tmp:
        one, many = os.path.join(tmp, "one"), os.path.join(tmp, "many")
        sizes = write_folder(one, args.megapixels, 1)
        write_folder(many, args.megapixels, copies)
        print(f"photos: {', '.join(f'{n} {w}x{h}' for n, (w, h) in sizes.items())} "
              f"({args.megapixels} MP, JPEG q95); {5 * copies} images; {os.cpu_count()} cores, "
              f"load average {os.getloadavg()[0]:.1f}")
        eager = MTCNN()
        compiled = compile_detector(MTCNN())

        def eager_networks():
            # FaceAligner compiles any detector it is given; undo that for the "before" row.
            for stage in eager.stages:
                stage._model = getattr(stage._model, "model", stage._model)
            return eager

        rows = []
        print(f"{'':60s} {'img/s':>8s} {'per core':>9s} {'per CPU s':>9s}")

        def measure(label, src, n_copies, workers=1, detector=None, **kwargs):
            values, per_cpu = [], []
            for r in range(repeats + 1):  # the first run warms up (graph tracing) and is not kept
                if workers == 1:
                    kwargs["detector"] = detector() if callable(detector) else detector
                value, cpu = timed(src, os.path.join(tmp, f"out-{len(rows)}-{r}"), n_copies, label, workers=workers,
                                   **kwargs)
                if r or workers > 1:
                    values.append(value)
                    per_cpu.append(cpu)
                if workers > 1 and len(values) == repeats:
                    break
            per_core = float(np.median(values)) / workers
            rows.append((label, workers, float(np.median(values)), per_core, float(np.median(per_cpu))))
            print(f"{label:60s} {rows[-1][2]:8.2f} {per_core:9.2f} {rows[-1][4]:9.2f}", flush=True)

        measure("before: full resolution, one at a time, eager", one, 1, detector=eager_networks,
                detect_size=None, batch_size=1)
        measure("full resolution, one at a time, compiled", one, 1, detector=compiled, detect_size=None,
                batch_size=1)
        measure(f"detect_size={DEFAULT_DETECT_SIZE}, one at a time, compiled", many, copies, detector=compiled,
                batch_size=1)
        measure(f"detect_size={DEFAULT_DETECT_SIZE}, batches of 8, compiled (default)", many, copies,
                detector=compiled, batch_size=8)
        if not args.quick and args.workers > 1:
            measure(f"default, {args.workers} worker processes (start-up included)", many, copies,
                    workers=args.workers)
    before, after = rows[0], rows[3]
    print(f"default / before: {after[3] / before[3]:.1f}x per core (wall clock), {after[4] / before[4]:.1f}x per CPU "
          f"second; default: {after[3]:.2f} images/s per core, {after[4]:.2f} images per CPU second (goal >= 10)")
    print("(per CPU second: images over the user+system time of this process and its workers; on a loaded "
          "machine the closest figure to images/s on a core of one's own)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
