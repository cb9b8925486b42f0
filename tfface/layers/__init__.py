"""tfface.layers."""
