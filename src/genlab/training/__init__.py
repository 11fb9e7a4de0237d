"""The one training loop (loop.py) and what it is made of: callbacks, EMA, precision, schedules,
several processes (distributed.py) and the training state, live and on disk (state.py)."""
from genlab.training.callbacks import Callback
from genlab.training.loop import TrainingDiverged, TrainingInterrupted, train
from genlab.training.state import TrainingRun

__all__ = ["Callback", "TrainingDiverged", "TrainingInterrupted", "TrainingRun", "train"]
