"""Evaluation: metrics on a trained model."""
