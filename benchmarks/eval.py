"""Benchmark of tfface.eval (numpy only; TensorFlow is not imported).

1. The LFW-sized verification protocol: 6,000 pairs of 512-d float32 embeddings, 10 folds, exact
   threshold search, ROC/AUC/EER and TAR@FAR (goal <= 50 ms).
2. MegaFace-sized identification: 3,530 probes (80 identities) against 1,000,000 x 512-d
   distractors, rank-1/5/10 and exact TAR@FAR 1e-3..1e-6 (goal <= 60 s and <= 1.5 GB peak RSS on
   2 cores). The distractors (2 GB as float32) are generated chunk by chunk inside a generator and
   never held at once, as they would be read from a memmap; the generation time is measured and
   reported separately. ``--quick`` uses 100,000 distractors.
3. ``--ijb``: IJB-C 1:1 after extraction (goal <= 60 s and <= 2 GB peak RSS on 2 cores), run
   alone in its own process so that the peak RSS is its own: 469,375 random 512-d float32 image
   features (the lines of ``ijbc_name_5pts_score.txt``) in 23,124 templates (3,531 gallery +
   19,593 probe templates; media ids drawn so that templates hold stills and multi-frame videos)
   and 15,658,489 template pairs (19,557 genuine), each probe compared with ~800 gallery
   templates as in the real list. Timed: reading the pair list from text (written once to
   ``--ijb-pairs``, not timed), media → template pooling with detector-score weights, scoring
   every pair, TAR@FAR 1e-6..1e-1, AUC and the ROC for the plot.

Peak memory is the process's RSS high-water mark (``resource.getrusage``), which includes the
Python interpreter and numpy; nothing is written to disk.

    python benchmarks/eval.py [--quick] [--distractors N] [--chunk-size 8192]
    python benchmarks/eval.py --ijb [--ijb-pairs /tmp/tfface_ijbc_pairs.txt]
"""
import argparse
import os
import resource
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tfface.eval.identification import identify  # noqa: E402
from tfface.eval.verification import verify, verify_scores, pair_scores  # noqa: E402


def peak_rss_mb():
    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def bench_verification(repeats):
    rng = np.random.default_rng(0)
    n, d = 6000, 512
    issame = np.tile(np.r_[np.ones(300, bool), np.zeros(300, bool)], 10)
    a = rng.standard_normal((n, d), dtype=np.float32)
    b = np.where(issame[:, None], a + 1.5 * rng.standard_normal((n, d), dtype=np.float32),
                 rng.standard_normal((n, d), dtype=np.float32))
    verify(a, b, issame)  # warm-up
    times, times_scores = [], []
    scores = pair_scores(a, b)
    for _ in range(repeats):
        t = time.perf_counter()
        res = verify(a, b, issame)
        times.append(time.perf_counter() - t)
        t = time.perf_counter()
        verify_scores(scores, issame)
        times_scores.append(time.perf_counter() - t)
    med, best = np.median(times) * 1e3, np.min(times) * 1e3
    print(f"verification 6,000 pairs x 512-d, 10 folds: median {med:.1f} ms, best {best:.1f} ms "
          f"(goal 50 ms: ratio {med / 50:.2f}); protocol on precomputed scores: median "
          f"{np.median(times_scores) * 1e3:.1f} ms; accuracy {res['accuracy']:.4f}")


def bench_identification(n_distractors, chunk_size):
    rng = np.random.default_rng(1)
    n_probes, d, n_ids = 3530, 512, 80
    labels = np.arange(n_probes) % n_ids
    centres = rng.standard_normal((n_ids, d), dtype=np.float32)
    probes = centres[labels] + 1.8 * rng.standard_normal((n_probes, d), dtype=np.float32)
    gen_time = [0.0]

    def distractors():
        g = np.random.default_rng(2)
        for start in range(0, n_distractors, chunk_size):
            t = time.perf_counter()
            chunk = g.standard_normal((min(chunk_size, n_distractors - start), d),
                                      dtype=np.float32)
            gen_time[0] += time.perf_counter() - t
            yield chunk

    rss_before = peak_rss_mb()
    t = time.perf_counter()
    res = identify(probes, labels, distractors=distractors(), num_distractors=n_distractors,
                   chunk_size=chunk_size, ranks=(1, 5, 10), far=(1e-3, 1e-4, 1e-5, 1e-6))
    total = time.perf_counter() - t
    peak = peak_rss_mb()
    work = total - gen_time[0]
    scale = 1_000_000 / n_distractors
    print(f"identification {n_probes} probes x {n_distractors:,} x {d}-d distractors "
          f"(chunks of {chunk_size}): {total:.1f} s total, of which {gen_time[0]:.1f} s generating "
          f"the distractors; evaluation {work:.1f} s"
          + (f" (x{scale:.0f} -> ~{work * scale:.0f} s for 1,000,000)" if scale != 1 else ""))
    print(f"  goal 60 s: ratio {work * scale / 60:.2f}; peak RSS {peak:.0f} MB (before the run "
          f"{rss_before:.0f} MB; goal 1,536 MB: ratio {peak / 1536:.2f})")
    print(f"  {res['num_queries']:,} (probe, mate) queries, rank-1 {res['rank1']:.4f}, "
          f"CMC {res['cmc']}, TAR@FAR {res['tar_at_far']}")
    flops = 2.0 * n_probes * n_distractors * d
    print(f"  matrix products: {flops / 1e12:.2f} TFLOP -> {flops / work / 1e9:.0f} GFLOP/s "
          "effective")


IJBC_IMAGES, IJBC_GALLERY, IJBC_PROBES = 469_375, 3_531, 19_593
IJBC_PAIRS, IJBC_GENUINE = 15_658_489, 19_557


def _ijbc_pairs(path):
    """The synthetic pair list (t1 gallery template, t2 probe template, label), written once."""
    rng = np.random.default_rng(4)
    probes = np.arange(IJBC_GALLERY, IJBC_GALLERY + IJBC_PROBES)
    counts = np.full(IJBC_PROBES, IJBC_PAIRS // IJBC_PROBES)
    counts[: IJBC_PAIRS - counts.sum()] += 1
    t2 = np.repeat(probes, counts)
    t1 = rng.integers(0, IJBC_GALLERY, IJBC_PAIRS)
    label = np.zeros(IJBC_PAIRS, np.int64)
    label[rng.choice(IJBC_PAIRS, IJBC_GENUINE, replace=False)] = 1
    if not os.path.isfile(path):
        t = time.perf_counter()
        with open(path + ".tmp", "w") as fh:
            for a in range(0, IJBC_PAIRS, 1 << 20):
                fh.write("\n".join(f"{x} {y} {z}" for x, y, z in
                                   zip(t1[a:a + (1 << 20)].tolist(), t2[a:a + (1 << 20)].tolist(),
                                       label[a:a + (1 << 20)].tolist())))
                fh.write("\n")
        os.replace(path + ".tmp", path)
        print(f"  (wrote {path} in {time.perf_counter() - t:.0f} s; not timed)")


def bench_ijbc(pairs_path):
    from tfface.data.ijb import IJBImages, read_template_pairs
    from tfface.eval.protocols.ijb import IJBC

    _ijbc_pairs(pairs_path)
    rng = np.random.default_rng(3)
    n_t = IJBC_GALLERY + IJBC_PROBES
    # Every template gets images; ~1/3 of them in multi-frame media (videos).
    templates = np.r_[np.arange(n_t), rng.integers(0, n_t, IJBC_IMAGES - n_t)]
    templates.sort()
    medias = rng.integers(0, 60_000, IJBC_IMAGES)
    scores = rng.uniform(0.5, 1.0, IJBC_IMAGES)
    feats = rng.standard_normal((IJBC_IMAGES, 512), dtype=np.float32)
    images = IJBImages([], None, scores, templates, medias)
    rss_before = peak_rss_mb()
    t0, c0 = time.perf_counter(), time.process_time()
    t1, t2, issame = read_template_pairs(pairs_path)
    t_read = time.perf_counter() - t0
    res = IJBC(os.path.dirname(pairs_path)).verify(images, feats, t1, t2, issame)
    total, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = peak_rss_mb()
    print(f"IJB-C 1:1: {IJBC_IMAGES:,} image features x 512-d -> {res['num_templates']:,} "
          f"templates, {res['num_pairs']:,} pairs ({res['num_genuine']:,} genuine): {total:.1f} s "
          f"(reading the pair list {t_read:.1f} s; CPU time of both cores {cpu:.1f} s; goal 60 s: "
          f"ratio {total / 60:.2f}); peak RSS "
          f"{peak:.0f} MB (features alone {feats.nbytes / 2**20:.0f} MB, before the run "
          f"{rss_before:.0f} MB; goal 2,048 MB: ratio {peak / 2048:.2f})")
    print(f"  TAR@FAR {res['tar_at_far']}, AUC {res['auc']:.4f}, {res['roc'][0].shape[0]} ROC "
          "points")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="100,000 distractors")
    parser.add_argument("--distractors", type=int, default=None)
    parser.add_argument("--chunk-size", type=int, default=8192)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--ijb", action="store_true", help="only the IJB-C 1:1 benchmark")
    parser.add_argument("--ijb-pairs", default=os.path.join("/tmp", "tfface_ijbc_pairs.txt"),
                        help="synthetic IJB-C pair list (written once if missing)")
    args = parser.parse_args()
    if args.ijb:
        print(f"numpy {np.__version__}, {os.cpu_count()} CPUs, load average "
              f"{os.getloadavg()[0]:.1f}")
        bench_ijbc(args.ijb_pairs)
        return
    n = args.distractors or (100_000 if args.quick else 1_000_000)
    print(f"numpy {np.__version__}, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f}")
    bench_verification(args.repeats)
    bench_identification(n, args.chunk_size)


if __name__ == "__main__":
    main()
