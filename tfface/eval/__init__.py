"""tfface.eval: verification (LFW-style k-fold, TAR@FAR, ROC/AUC/EER), identification against
streamed distractors (CMC, MegaFace-style TAR@FAR), template/video verification, embedding
extraction, a Keras callback and reports (the ``tfface eval`` command is ``tfface.commands.eval``).

The protocol modules are numpy only; TensorFlow is imported only by extraction and the callback.
Public names are resolved lazily, so importing this package is cheap.
"""
from tfface._lazy import lazy_exports

_EXPORTS = {
    "verify": "tfface.eval.verification",
    "verify_scores": "tfface.eval.verification",
    "pair_scores": "tfface.eval.verification",
    "fold_slices": "tfface.eval.verification",
    "roc_curve": "tfface.eval.verification",
    "tar_at_far": "tfface.eval.verification",
    "identify": "tfface.eval.identification",
    "template_features": "tfface.eval.templates",
    "video_features": "tfface.eval.templates",
    "verify_templates": "tfface.eval.templates",
    "video_pairs_to_templates": "tfface.eval.templates",
    "extract_embeddings": "tfface.eval.extract",
    "VerificationCallback": "tfface.eval.callbacks",
    "format_table": "tfface.eval.report",
    "write_json": "tfface.eval.report",
    "plot_roc": "tfface.eval.report",
    "plot_det": "tfface.eval.report",
    "plot_cmc": "tfface.eval.report",
    "write_plots": "tfface.eval.report",
    "evaluate_protocol": "tfface.eval.protocols.runner",
}


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
