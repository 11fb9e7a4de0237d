"""What users do with a trained maker: latent paths and morphs, inversion, editing, masks and
inpainting, upscaling. Each module is one task; import the one you need."""
