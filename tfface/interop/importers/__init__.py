"""The registered importers: one module per third-party format (imported to register them)."""
from tfface.interop.importers import facenet, facenet_pytorch  # noqa: F401
from tfface.interop.importers import insightface  # noqa: F401  insightface_pth, insightface_onnx
