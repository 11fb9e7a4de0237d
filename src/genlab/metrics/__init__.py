"""Metrics: each a pure function over tensors, returning plain numbers.

    from genlab.metrics import mode_coverage
    scores = mode_coverage(samples, centers, std)   # VEEGAN/PacGAN protocol for 2-D mixtures
"""
from genlab.metrics.modes import mode_coverage

__all__ = ["mode_coverage"]
