"""GANs: networks (nets.py), losses and penalties (losses.py), the model (model.py), and an encoder
trained against a frozen generator (encoder.py)."""
from genlab.models.gan.model import GAN, GANConfig

__all__ = ["GAN", "GANConfig"]
