"""Denoising diffusion (DDPM/DDIM) in pixel space or in an autoencoder's latent space, with classifier-free guidance."""
from genlab.models.diffusion.model import Diffusion, DiffusionConfig
from genlab.models.diffusion.sampling import ddim_sample, ddim_sigma, ddim_timesteps, ddpm_sample, guidance_combine, guided
from genlab.models.diffusion.schedule import NoiseSchedule
from genlab.models.diffusion.unet import UNet, timestep_embedding

__all__ = ["Diffusion", "DiffusionConfig", "NoiseSchedule", "UNet", "ddim_sample", "ddim_sigma", "ddim_timesteps", "ddpm_sample",
           "guidance_combine", "guided", "timestep_embedding"]
