"""tfface.backbones."""
