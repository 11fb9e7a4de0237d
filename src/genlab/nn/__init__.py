"""Building blocks shared by models: conv stacks, differentiable augmentation."""
from genlab.nn.conv import ConvDecoder, ConvEncoder, downsampled_sizes
from genlab.nn.modes import eval_mode

__all__ = ["ConvDecoder", "ConvEncoder", "downsampled_sizes", "eval_mode"]
