"""tfface.eval."""
