"""Training: the generic trainer and checkpoints."""
