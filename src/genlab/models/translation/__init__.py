"""Image-to-image translation: pix2pix (paired; Isola et al. 2017) and CycleGAN (unpaired; Zhu et al. 2017)."""
from genlab.models.translation.cyclegan import CycleGAN, CycleGANConfig, cycle_consistency_loss
from genlab.models.translation.nets import PatchDiscriminator, ResNetGenerator, UNetGenerator, receptive_field
from genlab.models.translation.pix2pix import Pix2Pix, Pix2PixConfig
from genlab.models.translation.pool import ImagePool

__all__ = ["CycleGAN", "CycleGANConfig", "ImagePool", "PatchDiscriminator", "Pix2Pix", "Pix2PixConfig", "ResNetGenerator",
           "UNetGenerator", "cycle_consistency_loss", "receptive_field"]
