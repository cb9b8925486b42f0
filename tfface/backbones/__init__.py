"""tfface.backbones: face-embedding backbones, registered in ``tfface.registry`` (kind
``"backbone"``, ``inject=("input_shape",)``).

``get(name, input_shape=None, embedding_size=None, **kwargs)`` builds a ``keras.Model`` from
float pixels in [0, 255] ``(B, H, W, 3)`` to float32 embeddings ``(B, D)`` (the normalisation
``(x − 127.5)/128`` is a layer inside the model); ``names()`` lists what is registered:
``attentionnet_irse``, ``inception_resnet_v1``, ``iresnet18/34/50/100``, ``mobilefacenet``,
``tiny``; ``spec(name)`` their native input shape, default embedding size and smallest input.
Importing the builders' modules registers them (no other side effects).
"""
from tfface.backbones.registry import BackboneSpec, get, names, spec
from tfface.backbones.common import FrozenScaleBatchNormalization
from tfface.backbones.attentionnet_irse import attentionnet_irse
from tfface.backbones.inception_resnet_v1 import inception_resnet_v1
from tfface.backbones.iresnet import build_iresnet, iresnet18, iresnet34, iresnet50, iresnet100
from tfface.backbones.mobilefacenet import mobilefacenet
from tfface.backbones.tiny import tiny

__all__ = [
    "BackboneSpec",
    "FrozenScaleBatchNormalization",
    "attentionnet_irse",
    "build_iresnet",
    "get",
    "inception_resnet_v1",
    "iresnet18",
    "iresnet34",
    "iresnet50",
    "iresnet100",
    "mobilefacenet",
    "names",
    "spec",
    "tiny",
]
