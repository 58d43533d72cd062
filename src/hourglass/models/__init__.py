"""Models: one file per algorithm. Every module here is imported by the registry; a new file is a new model."""
