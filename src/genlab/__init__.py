"""genlab: train, sample, evaluate and apply generative image models, and measure what each is good at.

    import genlab
    train = genlab.load_dataset("fashion-mnist", split="train")
    model = genlab.VAE(genlab.VAEConfig(image_shape=(1, 28, 28), latent_dim=16))
    genlab.train(model, train, genlab.TrainConfig(epochs=5, out_dir="runs/vae"))
    model = genlab.load("runs/vae")            # config.json + model.safetensors; no dataset needed
    x = model.sample(64, seed=0)               # float in [0, 1], N×C×H×W
    genlab.evaluate(model, genlab.load_dataset("fashion-mnist", split="test"))   # FID, KID, ... by name
"""
from genlab.config import TrainConfig
from genlab.data import Dataset, list_datasets, load_dataset
from genlab.errors import CheckpointError, ConfigError, DataError, GenlabError, OutputError
from genlab.evaluation import evaluate, evaluate_images
from genlab.evaluation.judges import train_judge
from genlab.models import (
    GAN,
    SR,
    VAE,
    Autoencoder,
    AutoencoderConfig,
    CycleGAN,
    CycleGANConfig,
    Diffusion,
    DiffusionConfig,
    GANConfig,
    Pix2Pix,
    Pix2PixConfig,
    SRConfig,
    VAEConfig,
)
from genlab.models.judge import load_judge
from genlab.models.vae import reparameterize
from genlab.reporting.comparison import compare
from genlab.runs import load
from genlab.training import Callback, train
from genlab.version import __version__

__all__ = [
    "GAN",
    "SR",
    "VAE",
    "Autoencoder",
    "AutoencoderConfig",
    "Callback",
    "CheckpointError",
    "ConfigError",
    "CycleGAN",
    "CycleGANConfig",
    "DataError",
    "Dataset",
    "Diffusion",
    "DiffusionConfig",
    "GANConfig",
    "GenlabError",
    "OutputError",
    "Pix2Pix",
    "Pix2PixConfig",
    "SRConfig",
    "TrainConfig",
    "VAEConfig",
    "__version__",
    "compare",
    "evaluate",
    "evaluate_images",
    "list_datasets",
    "load",
    "load_dataset",
    "load_judge",
    "reparameterize",
    "train",
    "train_judge",
]
