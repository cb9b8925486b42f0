"""The registered importers: one module per third-party format (imported to register them)."""
