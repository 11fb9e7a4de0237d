"""Evaluation: metrics addressed by name, computed for a model or a set of images against real data.

session.py   one call's shared state: real images, samples, their features and judge logits, made once
measures.py  how each metric is computed from that state (the formulas are genlab.metrics')
registry.py  METRICS: name → what it measures, what it needs, when it applies, whether it runs by default
api.py       evaluate, evaluate_images, applicable_metrics, parse_metrics, describe_metrics, format_results
judges.py    train_judge / judge_accuracy;  cas.py  the Classification Accuracy Score (trains a judge)
"""
from genlab.evaluation.api import evaluate, evaluate_images
from genlab.evaluation.registry import METRICS

__all__ = ["METRICS", "evaluate", "evaluate_images"]
