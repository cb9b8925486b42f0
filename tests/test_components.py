"""Every registered component through the shared harness, driven by the one table in
``tests/components.py``: the table and the registry list the same names; each row, built with
``registry.build`` as the recipe builder builds it, passes the harness of its kind (config round
trip, every constructor argument in ``get_config``, ``.keras`` reload, one fit step,
``mixed_float16``); an unknown name fails listing the known ones and a misspelt argument fails
naming ``<key>.<arg>``.

Heads register in ``tfface.registry`` with the heads refactor: until a head is registered the
head rows are skipped (they are written, and run as soon as ``registry.names("head")`` is not
empty).
"""
import functools
import os
import re
import sys

import numpy as np
import pytest

from tfface import registry, testing
from tfface.registry import Component, RegistryError

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from components import COMPONENTS, NO_MIXED_FIT, SLOW  # noqa: E402

NUM_CLASSES, DIM, BATCH = 5, 4, 8


def _rows(slow_marks=True):
    for kind, rows in COMPONENTS.items():
        for name, args in rows.items():
            marks = [pytest.mark.slow] if slow_marks and name in SLOW.get(kind, ()) else []
            yield pytest.param(kind, name, args, id=f"{kind}-{name}", marks=marks)


def test_the_table_covers_the_component_kinds():
    assert set(COMPONENTS) == {"head", "loss", "centres", "backbone"}
    assert set(COMPONENTS) <= set(registry.PROVIDERS)
    for kind, names in list(SLOW.items()) + list(NO_MIXED_FIT.items()):
        assert set(names) <= set(COMPONENTS[kind]), (kind, set(names) - set(COMPONENTS[kind]))


@pytest.mark.parametrize("kind", list(COMPONENTS))
def test_every_registered_name_has_a_row_and_every_row_is_registered(kind):
    registered, rows = set(registry.names(kind)), set(COMPONENTS[kind])
    assert not registered - rows, f"registered {kind}s without a row in tests/components.py: {sorted(registered - rows)}"
    assert not rows - registered, f"rows of tests/components.py not registered as {kind}: {sorted(rows - registered)}"


# ---------------------------------------------------------------------------------------------
# the harness of each kind


def _data():
    rng = np.random.default_rng(5)
    logits = (rng.normal(size=(BATCH, NUM_CLASSES)) * 2).astype("float32")
    emb = (rng.normal(size=(BATCH, DIM)) * 3).astype("float32")
    labels = np.array([0, 1, 0, 2, 1, 1, 3, 0], "int32")
    centres = rng.normal(size=(NUM_CLASSES, DIM)).astype("float32")
    return logits, emb, labels, centres


def _head(name, args):
    make = functools.partial(registry.build, "head", Component(name, args))
    testing.run_head_test(
        make, {"num_classes": NUM_CLASSES}, mixed_precision=name not in NO_MIXED_FIT.get("head", ())
    )


def _loss(name, args):
    entry = registry.entry("loss", name)
    logits, emb, labels, start = _data()
    provided = {}
    if "centres" in entry.inject:
        centres = registry.build(
            "centres",
            Component("class_centres", COMPONENTS["centres"]["class_centres"]),
            num_classes=NUM_CLASSES,
        )
        centres.build((None, DIM))
        centres.centres.assign(start)
        provided["centres"] = centres
    loss = registry.build("loss", Component(name, args), **provided)
    # FaceModel finds the layer through this attribute and ``loss.centres``.
    assert getattr(loss, "requires_centres", False) == ("centres" in entry.inject)
    if provided:
        assert loss.centres is provided["centres"]
    assert entry.meta["takes"] in ("logits", "embeddings")
    y_pred = logits if entry.meta["takes"] == "logits" else emb
    # A builder function (cross_entropy) returns a Keras class with arguments of its own: the
    # config must hold the registered ones.
    arguments = None if isinstance(entry.target, type) else list(entry.parameters())
    testing.run_loss_test(
        loss, labels, y_pred, reload_same_value=not provided, arguments=arguments
    )
    config = loss.get_config()
    assert set(args) <= set(config), set(args) - set(config)


def _centres(name, args):
    layer = testing.run_centres_test(
        lambda: registry.build("centres", Component(name, args), num_classes=NUM_CLASSES),
        NUM_CLASSES,
    )
    for arg, value in args.items():
        assert layer.get_config()[arg] == value


def _backbone(name, args):
    meta = registry.entry("backbone", name).meta
    side = meta["min_input_size"]
    shape = (side, side, 3)
    model = testing.run_backbone_test(
        lambda: registry.build("backbone", Component(name, args), input_shape=shape), shape
    )
    assert model.output.shape[-1] == args.get("embedding_size", meta["embedding_size"])


HARNESS = {"head": _head, "loss": _loss, "centres": _centres, "backbone": _backbone}


@pytest.mark.parametrize("kind, name, args", list(_rows()))
def test_shared_harness(kind, name, args):
    HARNESS[kind](name, args)


# ---------------------------------------------------------------------------------------------
# errors


@pytest.mark.parametrize("kind", list(COMPONENTS))
def test_unknown_name_lists_the_known_ones(kind):
    with pytest.raises(RegistryError) as info:
        registry.build(kind, Component("no_such_component"), key=kind)
    message = str(info.value)
    assert f"unknown {kind} 'no_such_component'" in message
    for name in registry.names(kind):
        assert name in message


@pytest.mark.parametrize("kind, name, args", list(_rows(slow_marks=False)))
def test_misspelt_argument_names_the_dotted_key(kind, name, args):
    params = registry.entry(kind, name).parameters()
    real = next(iter(params))
    typo = real[:-1] if real[:-1] not in params else real + "x"
    key = f"components.{kind}"
    # The check runs before anything is built, so the injected values are not needed.
    with pytest.raises(RegistryError, match=re.escape(f"{key}.{typo}:")) as info:
        registry.build(kind, Component(name, {**args, typo: 1}), key=key)
    assert real in str(info.value)  # the valid arguments are listed
