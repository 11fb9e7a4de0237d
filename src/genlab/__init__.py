"""genlab: train, sample, evaluate and apply generative image models."""
__version__ = "0.1.0"
