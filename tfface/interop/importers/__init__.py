"""The registered importers: one module per third-party format (imported to register them)."""
from tfface.interop.importers import facenet, facenet_pytorch  # noqa: F401
