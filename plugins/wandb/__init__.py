"""Weights & Biases: the logger, its config and history, model artifacts, and sweeps."""
