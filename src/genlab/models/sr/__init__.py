"""Super-resolution: networks (nets.py) and the SRResNet / SRGAN model (model.py)."""
from genlab.models.sr.model import SR, SRConfig

__all__ = ["SR", "SRConfig"]
