"""Face-search latency and recall on a large gallery: exact numpy search versus FAISS IVF.

The gallery is ``--size`` (default 1,000,000) random unit vectors of ``--dim`` (default 512)
dimensions, float32 (4·size·dim bytes: 2 GB at the defaults; FAISS's IVF index holds a second
copy, so about 4.5 GB in all). ``--queries`` (default 200) of its rows are chosen at random and
perturbed into planted near-duplicates (cosine about 0.9 to their row, far above the about
±0.13 = 3/sqrt(512) of two random vectors), so each query's right answer is known.

Measured (``tfface.search.exact.exact_topk`` and ``tfface.search.ann``):

* exact search: one query at a time (median latency of ``--single`` queries) and the queries as
  one batch (time per query), top-5; its recall@1 (the planted row found first) must be 1;
* FAISS IVF-Flat (``--nlist`` cells, k-means on ``64·nlist`` sampled rows): build time, then per
  ``--nprobe`` value the same latencies and recall@1 against exact search (the fraction of
  queries whose FAISS top-1 is the exact top-1, :func:`tfface.search.ann.recall_at_1`).

Prints a Markdown table with the machine (cores, load average before and after, memory); the
table in docs/search.md comes from this script.

    nice -n 5 python benchmarks/search.py                  # 1M x 512: a few minutes on 2 cores
    python benchmarks/search.py --size 100000 --dim 128    # quick
"""
import argparse
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402

from tfface.search.exact import exact_topk, normalise  # noqa: E402


def make_gallery(size, dim, seed, chunk=65536):
    rng = np.random.default_rng(seed)
    gallery = np.empty((size, dim), dtype=np.float32)
    for start in range(0, size, chunk):
        block = rng.standard_normal((min(chunk, size - start), dim), dtype=np.float32)
        gallery[start:start + len(block)] = normalise(block)
    return gallery


def planted_queries(gallery, count, cosine, seed):
    """Rows of the gallery perturbed to about ``cosine`` with their row."""
    rng = np.random.default_rng(seed + 1)
    rows = rng.choice(len(gallery), size=count, replace=False)
    noise = normalise(rng.standard_normal((count, gallery.shape[1]), dtype=np.float32))
    # unit row u, unit noise n ~ orthogonal to u: u·c + n·sqrt(1-c²) has cosine c with u.
    queries = normalise(gallery[rows] * cosine + noise * np.sqrt(1 - cosine ** 2))
    return queries, rows


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def memory_gb():
    try:
        with open("/proc/meminfo") as f:
            info = dict(line.split(":", 1) for line in f)
        return (int(info["MemTotal"].split()[0]) / 2**20, int(info["MemAvailable"].split()[0]) / 2**20)
    except (OSError, KeyError, ValueError):
        return (float("nan"), float("nan"))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=1_000_000)
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--single", type=int, default=10, help="single queries timed (median)")
    p.add_argument("--cosine", type=float, default=0.9, help="cosine of a planted query with its row")
    p.add_argument("--nlist", type=int, default=1024)
    p.add_argument("--nprobe", type=int, nargs="+", default=[8, 32, 128])
    p.add_argument("--k", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-faiss", action="store_true")
    args = p.parse_args(argv)

    load_before = os.getloadavg()
    total, available = memory_gb()
    t_gen, gallery = timed(lambda: make_gallery(args.size, args.dim, args.seed))
    queries, rows = planted_queries(gallery, args.queries, args.cosine, args.seed)
    print(f"gallery {args.size:,} x {args.dim} float32 ({gallery.nbytes / 2**30:.2f} GiB) made in {t_gen:.1f} s; "
          f"{args.queries} planted queries (cosine {args.cosine})", flush=True)

    table = []
    singles = [timed(lambda q=q: exact_topk(q[None], gallery, k=args.k, normalised=True))[0]
               for q in queries[:args.single]]
    t_batch, (scores, idx) = timed(lambda: exact_topk(queries, gallery, k=args.k, normalised=True))
    exact_top1 = idx[:, 0]
    planted = float(np.mean(exact_top1 == rows))
    table.append(("exact (numpy, chunked)", "-", statistics.median(singles) * 1e3,
                  t_batch / len(queries) * 1e3, 1.0, planted))
    print(f"exact: single {statistics.median(singles) * 1e3:.1f} ms, batch {t_batch / len(queries) * 1e3:.2f} ms/query, "
          f"planted found {planted:.3f}", flush=True)

    build = None
    if not args.no_faiss:
        from tfface.search import ann

        faiss = ann.import_faiss()
        t_build, index = timed(lambda: ann.build_faiss(gallery, kind="ivf", nlist=args.nlist, seed=args.seed))
        build = (t_build, faiss.omp_get_max_threads())
        print(f"faiss IVF-Flat nlist {args.nlist}: built in {t_build:.1f} s", flush=True)
        for nprobe in args.nprobe:
            index.nprobe = nprobe
            singles = [timed(lambda q=q: ann.faiss_topk(index, q[None], k=args.k))[0] for q in queries[:args.single]]
            t_batch, (_, f_idx) = timed(lambda: ann.faiss_topk(index, queries, k=args.k))
            recall = float(np.mean(f_idx[:, 0] == exact_top1))
            found = float(np.mean(f_idx[:, 0] == rows))
            table.append((f"FAISS IVF-Flat nlist {args.nlist}", nprobe, statistics.median(singles) * 1e3,
                          t_batch / len(queries) * 1e3, recall, found))
            print(f"nprobe {nprobe}: single {statistics.median(singles) * 1e3:.2f} ms, batch "
                  f"{t_batch / len(queries) * 1e3:.3f} ms/query, recall@1 {recall:.3f}", flush=True)

    load_after = os.getloadavg()
    print()
    print(f"Gallery {args.size:,} x {args.dim} (random unit vectors), {args.queries} planted near-duplicate "
          f"queries (cosine {args.cosine}), top-{args.k}.")
    print(f"Machine: {os.cpu_count()} cores, {total:.0f} GiB memory ({available:.0f} GiB available at the start); "
          f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after"
          + (f"; FAISS build {build[0]:.0f} s with {build[1]} threads" if build else "") + ".")
    print()
    print("| search | nprobe | single query (ms) | batched (ms/query) | recall@1 vs exact | planted found |")
    print("|---|---|---|---|---|---|")
    for name, nprobe, single, batch, recall, found in table:
        print(f"| {name} | {nprobe} | {single:.2f} | {batch:.3f} | {recall:.3f} | {found:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
