"""Benchmark of tfface.eval (numpy only; TensorFlow is not imported).

1. The LFW-sized verification protocol: 6,000 pairs of 512-d float32 embeddings, 10 folds, exact
   threshold search, ROC/AUC/EER and TAR@FAR (goal <= 50 ms).
2. MegaFace-sized identification: 3,530 probes (80 identities) against 1,000,000 x 512-d
   distractors, rank-1/5/10 and exact TAR@FAR 1e-3..1e-6 (goal <= 60 s and <= 1.5 GB peak RSS on
   2 cores). The distractors (2 GB as float32) are generated chunk by chunk inside a generator and
   never held at once, as they would be read from a memmap; the generation time is measured and
   reported separately. ``--quick`` uses 100,000 distractors.

Peak memory is the process's RSS high-water mark (``resource.getrusage``), which includes the
Python interpreter and numpy; nothing is written to disk.

    python benchmarks/eval.py [--quick] [--distractors N] [--chunk-size 8192]
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="100,000 distractors")
    parser.add_argument("--distractors", type=int, default=None)
    parser.add_argument("--chunk-size", type=int, default=8192)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    n = args.distractors or (100_000 if args.quick else 1_000_000)
    print(f"numpy {np.__version__}, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f}")
    bench_verification(args.repeats)
    bench_identification(n, args.chunk_size)


if __name__ == "__main__":
    main()
