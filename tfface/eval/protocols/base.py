"""The contract of a benchmark protocol (registry kind ``"protocol"``).

A protocol reads one benchmark *as published* (its folder layout and lists), asks for the
embeddings of the images it needs, and computes the benchmark's metrics with the official
evaluation logic::

    @registry.register("protocol", "lfw", inject=("data",))
    class LFW(Protocol):
        def evaluate(self, embed, progress=None): ...

    result = registry.build("protocol", Component("lfw", {"folds": 10}), data="/data/lfw").evaluate(embed)

``embed(images, key)`` is supplied by the runner (:func:`tfface.eval.protocols.evaluate_protocol`):
it takes anything ``tfface.eval.extract_embeddings`` takes (a list of image paths, a uint8 array
``(N, H, W, 3)``, a list of encoded images) and returns float32 ``(N, D)`` embeddings with the
run's flip fusion applied, *not* L2-normalised (protocols normalise where the official logic
does). ``key`` names the image set in the embedding cache (``"lfw/images"``) and in progress
lines; one protocol embeds each image set once.

A pair-set protocol may also offer ``pairs() -> (images, issame)`` (paths or encoded images, two
per pair): ``tfface pack`` writes such a set as an insightface ``.bin``.

``evaluate`` returns ``{metric: value}`` with the metric names of docs/eval.md: floats,
``tar_at_far`` as ``{far (float): tar}``, curves (``roc``, ``cmc``) as lists for the plots.
"""


class Protocol:
    """Base class of the registered benchmark protocols.

    Args:
        data: the benchmark's root folder (or file) as distributed.

    Subclasses take their options as keyword arguments (checked by the registry against their
    signature) and implement :meth:`evaluate`.
    """

    #: "verification" (ROC/DET plot) or "identification" (CMC plot).
    task = "verification"

    def __init__(self, data):
        self.data = data

    def evaluate(self, embed, progress=None):
        """The benchmark's metrics: ``{metric: value}``.

        Args:
            embed: ``embed(images, key) -> float32 (N, D)`` (see the module docstring).
            progress: ``progress(message)`` for a line of progress, or None.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement evaluate")
