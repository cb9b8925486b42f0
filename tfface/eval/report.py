"""Reports of evaluation results: a text table, a JSON file and plots (PNG): ROC and DET for
verification, CMC for identification.

``results`` is ``{set name: result dict}`` as returned by :func:`tfface.eval.verify`,
:func:`tfface.eval.identify` or a protocol's ``evaluate``. A ROC is ``(fpr, tpr[, thresholds])``
or ``{"fpr": [...], "tpr": [...]}``; a CMC is ``{rank: rate}`` or a list of rates for ranks
1, 2, .... A TAR whose FAR lies below the set's resolution (``far_resolution`` = 1/N_impostor)
is the FAR = 0 point: the table marks it with ``*``.
"""
import math
import os

import numpy as np


def _fmt_far(f):
    return f"{f:.0e}".replace("e-0", "e-")


def _pct(x):
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.2f}"


def _below_resolution(r, f):
    res = r.get("far_resolution")
    return res is not None and f < res * (1 - 1e-12)


def format_table(results):
    """A fixed-width table: one row per set; accuracy ± std (k-fold), AUC, EER and TAR@FAR for
    verification; rank-k and TAR@FAR for identification. Percentages; ``*`` marks a TAR at a FAR
    below the set's resolution 1/N_impostor (the FAR = 0 point), "n/a" one that was not
    measured."""
    fars = sorted({f for r in results.values() for f in r.get("tar_at_far", {})}, reverse=True)
    ranks = sorted({k for r in results.values() for k in _cmc_dict(r)})
    header = ["set", "pairs/queries", "accuracy", "AUC", "EER"]
    header += [f"rank-{k}" for k in ranks]
    header += [f"TAR@{_fmt_far(f)}" for f in fars]
    rows = []
    starred = False
    for name, r in results.items():
        n = r.get("num_pairs", r.get("num_queries", ""))
        acc = (f"{100 * r['accuracy']:.2f}±{100 * r['accuracy_std']:.2f}"
               if "accuracy" in r and "accuracy_std" in r else
               (_pct(r["accuracy"]) if "accuracy" in r else ""))
        row = [name, str(n), acc,
               _pct(r["auc"]) if "auc" in r else "",
               _pct(r["eer"]) if "eer" in r else ""]
        cmc = _cmc_dict(r)
        row += [_pct(cmc[k]) if k in cmc else "" for k in ranks]
        for f in fars:
            if f not in r.get("tar_at_far", {}):
                row.append("")
                continue
            cell = _pct(r["tar_at_far"][f])
            if cell != "n/a" and _below_resolution(r, f):
                cell += "*"
                starred = True
            row.append(cell)
        rows.append(row)
    keep = [i for i in range(len(header)) if i < 2 or any(row[i] for row in rows)]
    header = [header[i] for i in keep]
    rows = [[row[i] for i in keep] for row in rows]
    widths = [max(len(header[i]), *(len(row[i]) for row in rows)) for i in range(len(header))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in rows]
    if starred:
        lines.append("* FAR below the set's resolution 1/N_impostor: the FAR = 0 point "
                     "(threshold = the largest impostor score)")
    return "\n".join(lines)


def far_label(far):
    """``0.001 -> "1e-3"`` (the FAR keys of ``decision_thresholds`` and of export metadata)."""
    mantissa, exponent = f"{float(far):e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exponent)}"


def format_thresholds(results):
    """The decision thresholds of every verification result, one line each: the mean of the
    k-fold best-accuracy thresholds (± their std) and the threshold at each FAR, in the metric's
    units with the acceptance direction. Empty when no result has them."""
    lines = []
    for name, r in results.items():
        if not isinstance(r, dict) or "far_thresholds" not in r:
            continue
        metric = r.get("metric", "cosine")
        accept = ">=" if metric == "cosine" else "<="
        parts = []
        if r.get("threshold") is not None:
            std = float(np.std(r.get("thresholds", [r["threshold"]])))
            parts.append(f"best accuracy ({r.get('folds', '?')}-fold mean) {r['threshold']:.4f} ± {std:.4f}")
        for f, t in sorted(r["far_thresholds"].items(), key=lambda kv: -kv[0]):
            if t is None or not math.isfinite(t):
                continue
            star = "*" if _below_resolution(r, f) else ""
            parts.append(f"FAR {far_label(f)}{star}: {t:.4f}")
        lines.append(f"  {name}: accept a pair when {metric} {accept} t; " + "; ".join(parts))
    if not lines:
        return ""
    return "decision thresholds (tfface export --thresholds OUT/eval.json records them):\n" + "\n".join(lines)


def _cmc_dict(r):
    cmc = r.get("cmc")
    if cmc is None:
        return {}
    if isinstance(cmc, dict):
        return {int(k): v for k, v in cmc.items()}
    return {i + 1: v for i, v in enumerate(cmc)}


def _roc_arrays(r):
    roc = r["roc"]
    if isinstance(roc, dict):
        return np.asarray(roc["fpr"], float), np.asarray(roc["tpr"], float)
    return np.asarray(roc[0], float), np.asarray(roc[1], float)


def to_jsonable(obj, max_array=100000):
    """Plain JSON types: numpy scalars/arrays to Python, NaN to null, float keys to strings,
    the ROC as {"fpr", "tpr", "thresholds"} lists (inf thresholds to null)."""
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            key = k if isinstance(k, str) else (repr(float(k)) if isinstance(k, float) else str(k))
            if k == "roc" and isinstance(v, (tuple, list)) and len(v) == 3:
                v = {"fpr": v[0], "tpr": v[1], "thresholds": v[2]}
            out[key] = to_jsonable(v, max_array)
        return out
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v, max_array) for v in obj]
    if isinstance(obj, np.ndarray):
        if obj.size > max_array:
            return {"omitted_array_of_shape": list(obj.shape)}
        return to_jsonable(obj.tolist(), max_array)
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_json(results, path, **extra):
    """Write ``{"results": results, **extra}`` as strict JSON, atomically (see :func:`to_jsonable`)."""
    from tfface.files import write_json as _write

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    _write(path, to_jsonable({**extra, "results": results}))
    return path


def roc_figure(results, title="ROC"):
    """A matplotlib Figure of the ROC curves (TAR against FAR, log-scaled FAR) of every result
    that has a ``roc``. The figure is drawn on its own Agg canvas (selected here, when called, not
    at import), so neither a display nor the session's pyplot backend is touched."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5, 4.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    lowest = 1.0
    for name, r in results.items():
        if "roc" not in r:
            continue
        fpr, tpr = _roc_arrays(r)
        keep = fpr > 0  # log axis
        if keep.any():
            lowest = min(lowest, fpr[keep].min())
        label = name
        if "auc" in r:
            label += f" (AUC {r['auc']:.4f})"
        ax.step(fpr[keep], tpr[keep], where="post", label=label)
    ax.set_xscale("log")
    ax.set_xlim(max(lowest, 1e-6), 1.0)
    ax.set_ylim(0.0, 1.01)
    ax.set_xlabel("false accept rate")
    ax.set_ylabel("true accept rate")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    return fig


def plot_roc(results, path, title="ROC"):
    """Save the ROC figure of :func:`roc_figure` as a PNG at ``path``; returns the path."""
    return _save(roc_figure(results, title), path)


def roc_png_bytes(results, title="ROC"):
    """The ROC figure as PNG bytes (for TensorBoard)."""
    import io

    buf = io.BytesIO()
    roc_figure(results, title).savefig(buf, format="png")
    return buf.getvalue()


def _new_figure():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5, 4.5), dpi=100)
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot(1, 1, 1)


def det_figure(results, title="DET"):
    """DET curves (false non-match rate against false match rate, both log-scaled) of every
    result with a ``roc``."""
    fig, ax = _new_figure()
    for name, r in results.items():
        if "roc" not in r:
            continue
        fpr, tpr = _roc_arrays(r)
        fnr = 1.0 - tpr
        keep = (fpr > 0) & (fnr > 0)
        label = name + (f" (EER {100 * r['eer']:.2f}%)" if "eer" in r else "")
        ax.step(fpr[keep], fnr[keep], where="post", label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("false match rate")
    ax.set_ylabel("false non-match rate")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper right", fontsize="small")
    fig.tight_layout()
    return fig


def cmc_figure(results, title="CMC"):
    """CMC curves (identification rate against rank) of every result with a ``cmc``."""
    fig, ax = _new_figure()
    for name, r in results.items():
        cmc = _cmc_dict(r)
        if not cmc:
            continue
        ranks = sorted(cmc)
        ax.plot(ranks, [cmc[k] for k in ranks], marker="o", label=name)
    ax.set_xscale("log")
    ax.set_ylim(0.0, 1.01)
    ax.set_xlabel("rank")
    ax.set_ylabel("identification rate")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    return fig


def _save(fig, path):
    from tfface.files import atomic_file

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic_file(path) as fh:
        fig.savefig(fh, format="png")
    return path


def plot_det(results, path, title="DET"):
    """Save :func:`det_figure` as a PNG at ``path``; returns the path."""
    return _save(det_figure(results, title), path)


def plot_cmc(results, path, title="CMC"):
    """Save :func:`cmc_figure` as a PNG at ``path``; returns the path."""
    return _save(cmc_figure(results, title), path)


def write_plots(results, out_dir):
    """``roc.png`` and ``det.png`` when a result has a ROC, ``cmc.png`` when one has a CMC;
    returns the paths written."""
    written = []
    if any("roc" in r for r in results.values()):
        written.append(plot_roc(results, os.path.join(out_dir, "roc.png")))
        written.append(plot_det(results, os.path.join(out_dir, "det.png")))
    if any(_cmc_dict(r) for r in results.values()):
        written.append(plot_cmc(results, os.path.join(out_dir, "cmc.png")))
    return written
