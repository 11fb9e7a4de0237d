"""The one training loop (loop.py) and what it is made of: callbacks, EMA, precision, schedules,
several processes (distributed.py) and the training state on disk (state.py)."""
from genlab.training.loop import TrainingDiverged, train

__all__ = ["TrainingDiverged", "train"]
