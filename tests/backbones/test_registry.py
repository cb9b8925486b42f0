"""Backbones in the shared registry: names, errors, defaults, and that one decorated builder is
all a new backbone needs."""
import inspect

import keras
import pytest

from tfface import backbones, registry
from tfface.registry import Component

PAPER_BACKBONES = {
    "inception_resnet_v1",
    "iresnet18",
    "iresnet34",
    "iresnet50",
    "iresnet100",
    "mobilefacenet",
    "attentionnet_irse",
    "tiny",
}


def test_names_lists_every_backbone():
    assert PAPER_BACKBONES <= set(backbones.names())
    assert backbones.names() == sorted(backbones.names())


def test_unknown_name_lists_known_ones():
    with pytest.raises(ValueError, match="unknown backbone 'resnet9000'") as info:
        backbones.get("resnet9000")
    for name in PAPER_BACKBONES:
        assert name in str(info.value)


def test_duplicate_registration_is_an_error():
    with pytest.raises(ValueError, match="'tiny' is already registered"):
        registry.register("backbone", "tiny", inject=("input_shape",), input_shape=(32, 32, 3))(
            lambda **kw: None
        )


def test_new_backbone_is_one_decorated_builder(monkeypatch):
    backbones.names()  # load the real ones before taking a copy
    monkeypatch.setitem(registry._REGISTRY, "backbone", dict(registry._REGISTRY["backbone"]))

    @registry.register(
        "backbone",
        "flat_test",
        inject=("input_shape",),
        input_shape=(8, 8, 3),
        embedding_size=5,
        min_input_size=8,
    )
    def flat(input_shape=(8, 8, 3), embedding_size=5, scale=1.0):
        x = keras.Input(input_shape)
        y = keras.layers.Dense(embedding_size)(keras.layers.Flatten()(x))
        return keras.Model(x, y, name=f"flat_{scale}")

    assert "flat_test" in backbones.names()
    model = backbones.get("flat_test", scale=2.0)
    assert model.name == "flat_2.0"
    assert tuple(model.input.shape) == (None, 8, 8, 3)
    assert tuple(model.output.shape) == (None, 5)
    assert tuple(backbones.get("flat_test", (4, 4, 3), 7).output.shape) == (None, 7)
    assert backbones.spec("flat_test").embedding_size == 5
    built = registry.build("backbone", Component("flat_test", {}), input_shape=(8, 8, 3))
    assert tuple(built.output.shape) == (None, 5)


@pytest.mark.parametrize("name", backbones.names())
def test_registered_defaults_match_the_builder(name):
    """``registry.build("backbone", Component(name, {}), input_shape=...)`` (what the recipe
    builder calls) gives the registered default embedding size: the builder's own default is the
    entry's ``meta["embedding_size"]``, and its default input shape the native one."""
    entry = registry.entry("backbone", name)
    assert entry.inject == ("input_shape",)
    params = inspect.signature(entry.target).parameters
    assert params["embedding_size"].default == entry.meta["embedding_size"]
    assert tuple(params["input_shape"].default) == tuple(entry.meta["input_shape"])
    assert entry.meta["min_input_size"] <= min(entry.meta["input_shape"][:2])
    resolved = registry.resolved_args("backbone", Component(name, {}))
    assert resolved.args["embedding_size"] == entry.meta["embedding_size"]
    assert "input_shape" not in resolved.args


def test_build_without_embedding_size_gives_the_default():
    tiny = registry.build("backbone", Component("tiny", {}), input_shape=(32, 32, 3))
    assert tuple(tiny.output.shape) == (None, 64)
    tiny = registry.build("backbone", Component("tiny", {"embedding_size": 8}), input_shape=(40, 40, 3))
    assert tuple(tiny.input.shape) == (None, 40, 40, 3) and tuple(tiny.output.shape) == (None, 8)
    with pytest.raises(ValueError, match=r"backbone\.input_shape: set by the builder"):
        registry.build(
            "backbone", Component("tiny", {"input_shape": (32, 32, 3)}), input_shape=(32, 32, 3)
        )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"input_shape": (16, 16, 3)}, r"too small.*>= 32"),
        ({"input_shape": (32, 32, 1)}, r"\(height, width, 3\)"),
        ({"input_shape": "big"}, r"\(height, width, 3\)"),
        ({"embedding_size": 0}, "embedding_size must be a positive int"),
        ({"embedding_size": 2.5}, "embedding_size must be a positive int"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        backbones.get("tiny", **kwargs)


def test_builder_specific_arguments_are_checked():
    with pytest.raises(ValueError, match="dropout_keep must be in"):
        backbones.get("inception_resnet_v1", dropout_keep=0.0)
    with pytest.raises(ValueError, match="dropout must be in"):
        backbones.get("iresnet18", input_shape=(16, 16, 3), dropout=1.5)
    with pytest.raises(ValueError, match=r"inception_resnet_v1.*>= 75"):
        backbones.get("inception_resnet_v1", input_shape=(64, 64, 3))
