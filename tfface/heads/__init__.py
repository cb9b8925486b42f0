"""tfface.heads."""
