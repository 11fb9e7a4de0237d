"""Files in and out: atomic writes, the checkpoint file format, images, grids, GIFs and plots.

The bottom of the house: it imports nothing of genlab but ``errors``.
"""
