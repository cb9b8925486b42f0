"""The backbone registry: names, errors, and that one decorated builder is all a new backbone
needs."""
import keras
import pytest

from tfface import backbones
from tfface.backbones import registry

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
        backbones.register("tiny", input_shape=(32, 32, 3))(lambda **kw: None)


def test_new_backbone_is_one_decorated_builder(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))

    @backbones.register("flat_test", input_shape=(8, 8, 3), embedding_size=5, min_input_size=8)
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
