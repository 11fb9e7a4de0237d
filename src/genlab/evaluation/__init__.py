"""Evaluation: metrics addressed by name, computed for a model or a set of images against real data."""
from genlab.evaluation.api import evaluate, evaluate_images

__all__ = ["evaluate", "evaluate_images"]
