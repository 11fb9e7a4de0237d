"""GAN networks: DCGAN convnets for 28/32/64-pixel images and small MLPs for 2-D point data.

Generators map z (and a class label, when conditional) to a sample; discriminators map a sample
(and a label) to one logit. Conditioning follows the now-standard pair: class-conditional batch
norm in G (de Vries et al. 2017; Brock et al. 2019, BigGAN §3) and a projection discriminator
(Miyato & Koyama 2018, "cGANs with Projection Discriminator", Eq. 3). With ``label_inputs`` the label
also enters both networks at their inputs, as in the original conditional GAN (Mirza & Osindero 2014,
§4.1: one-hot y concatenated to z in G and to x in D; for images, as K constant planes beside the
pixels): projection and conditional BN act late and start neutral, the input labels reach every layer
from the first step. Measured on fashion-mnist-mini, 1,000 steps of batch 64 (benchmarks/
time_to_quality.md): judge label accuracy 0.40 with projection + CBN alone, 0.54 with labels into D
only, 0.81 with labels into both (equal rates 4e-4), and 0.67 with input labels but no projection/CBN.
"""
from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from genlab.errors import ConfigError

# Image size → (size of the first feature map, number of stride-2 layers): 7→14→28, 4→8→16→32, 4→…→64.
DCGAN_RESOLUTIONS = {28: (7, 2), 32: (4, 3), 64: (4, 4)}

# Point-data networks: the generator and discriminator of PacGAN's 2-D grid and ring experiments
# (Lin et al. 2018, §5.1 and github.com/fjxmlzn/PacGAN synthetic_data_experiments/*/config.py),
# which follow the VEEGAN toy setup (Srivastava et al. 2017): G has 4 hidden layers of 400 units
# with batch norm and ReLU and a linear output; D has 3 hidden layers of 200 units. PacGAN's D uses
# maxout with 5 pieces (5× the weights); we use LeakyReLU(0.2) like our image D, so ours is no
# larger than theirs and one D recipe serves both data kinds.
MLP_G_LAYERS, MLP_D_LAYERS = 4, 3


def check_image_size(image_shape: tuple[int, ...]) -> None:
    _, height, width = image_shape
    if height != width or height not in DCGAN_RESOLUTIONS:
        sizes = ", ".join(f"{s}×{s}" for s in DCGAN_RESOLUTIONS)
        raise ConfigError(f"image_shape {tuple(image_shape)}: the DCGAN networks take {sizes} images; resize the data")


class ClassBatchNorm(nn.Module):
    """Batch norm; with classes, its per-channel gain and bias come from the label.

    Conditional batch norm (de Vries et al. 2017, "Modulating early visual processing by language";
    BigGAN, Brock et al. 2019 §3):
    BN(h | y) = (1 + γ(y)) · (h − μ)/σ + β(y), with γ, β class embeddings started at 0 so every
    class begins as plain batch norm.
    """

    def __init__(self, num_features: int, num_classes: int, spatial: bool) -> None:
        super().__init__()
        norm = nn.BatchNorm2d if spatial else nn.BatchNorm1d
        self.norm = norm(num_features, affine=num_classes == 0)
        self.num_classes = num_classes
        if num_classes:
            self.gain = nn.Embedding(num_classes, num_features)
            self.bias = nn.Embedding(num_classes, num_features)
            nn.init.zeros_(self.gain.weight)
            nn.init.zeros_(self.bias.weight)

    def forward(self, h: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h = self.norm(h)
        if not self.num_classes:
            return h
        shape = (h.shape[0], h.shape[1]) + (1,) * (h.dim() - 2)
        return h * (1.0 + self.gain(labels).view(shape)) + self.bias(labels).view(shape)


def with_label_inputs(x: torch.Tensor, labels: torch.Tensor | None, num_classes: int) -> torch.Tensor:
    """``x`` with one-hot ``labels`` concatenated along dim 1: K more features for N×D, K constant planes for
    N×C×H×W (Mirza & Osindero 2014, §4.1); ``x`` itself when ``num_classes`` is 0."""
    if not num_classes:
        return x
    one_hot = F.one_hot(labels, num_classes).to(x.dtype)
    if x.dim() == 4:
        one_hot = one_hot[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])
    return torch.cat([x, one_hot.to(memory_format=torch.contiguous_format)], dim=1)


class Generator(nn.Module):
    """z (with one-hot y when ``label_classes``) → [layer → (class) batch norm → ReLU] × n → output layer →
    tanh for images, linear for points."""

    def __init__(self, layers: list[nn.Module], widths: list[int], output: nn.Module, num_classes: int, images: bool,
                 label_classes: int = 0) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.norms = nn.ModuleList(ClassBatchNorm(w, num_classes, spatial=images) for w in widths)
        self.output = output
        self.images = images
        self.label_classes = label_classes

    def first_block(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """G_1(z): the first layer → (class) batch norm → ReLU (also the layer GANSpace takes PCA in)."""
        z = with_label_inputs(z, labels, self.label_classes)
        h = z[:, :, None, None] if self.images else z  # a code is a 1×1 feature map to the first transposed conv
        return F.relu(self.norms[0](self.layers[0](h), labels))

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h = self.first_block(z, labels)
        for layer, norm in zip(self.layers[1:], self.norms[1:], strict=True):
            h = F.relu(norm(layer(h), labels))
        h = self.output(h)
        return torch.tanh(h) if self.images else h


class ProjectionDiscriminator(nn.Module):
    """logit = ψ(φ(x)) + ⟨embed(y), φ(x)⟩ (Miyato & Koyama 2018, Eq. 3); without classes just ψ(φ(x)).

    φ is ``features`` (flattened), ψ is ``to_logit`` (a linear map of φ(x)). With ``label_classes`` φ also
    sees one-hot y beside x (see ``with_label_inputs``).
    """

    def __init__(self, features: nn.Module, to_logit: nn.Module, feature_size: int, num_classes: int,
                 label_classes: int = 0) -> None:
        super().__init__()
        self.features = features
        self.to_logit = to_logit
        self.embed = nn.Embedding(num_classes, feature_size) if num_classes else None
        self.label_classes = label_classes

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h = self.features(with_label_inputs(x, labels, self.label_classes))
        logit = self.to_logit(h).view(-1)
        if self.embed is not None:
            logit = logit + (self.embed(labels) * h.flatten(1)).sum(1)
        return logit


def dcgan_generator(image_shape: tuple[int, int, int], latent_dim: int, width: int, num_classes: int,
                    label_inputs: bool = False) -> Generator:
    """Radford et al. 2016 (DCGAN) §3: transposed convs, no pooling, BN + ReLU, tanh output.

    64×64: z → 8w×4×4 → 4w×8×8 → 2w×16×16 → w×32×32 → C×64×64 (w = ``width``, the paper's ngf);
    32×32 and 28×28 drop the widest stages (4w×4×4 → … and 2w×7×7 → w×14×14 → C×28×28).
    """
    channels, size, _ = image_shape
    start, num_up = DCGAN_RESOLUTIONS[size]
    widths = [width * 2 ** i for i in reversed(range(num_up))]
    label_classes = num_classes if label_inputs else 0
    layers = [nn.ConvTranspose2d(latent_dim + label_classes, widths[0], start, 1, 0, bias=False)]  # 1×1 → start×start
    layers += [nn.ConvTranspose2d(a, b, 4, 2, 1, bias=False) for a, b in itertools.pairwise(widths)]
    generator = Generator(layers, widths, nn.ConvTranspose2d(widths[-1], channels, 4, 2, 1), num_classes, images=True,
                          label_classes=label_classes)
    return dcgan_init(generator)


def dcgan_discriminator(image_shape: tuple[int, int, int], width: int, num_classes: int, batch_norm: bool,
                        use_spectral_norm: bool, label_inputs: bool = False) -> ProjectionDiscriminator:
    """Radford et al. 2016 §3: stride-2 convs (no pooling), LeakyReLU(0.2), batch norm on all but the
    input layer; the last 4×4 (7×7 at 28 pixels) map is read out by one full-size conv (a linear ψ).

    64×64: C → w → 2w → 4w → 8w at 32, 16, 8, 4 pixels (w = ``width``, the paper's ndf).
    """
    channels, size, _ = image_shape
    end, num_down = DCGAN_RESOLUTIONS[size]
    widths = [width * 2 ** i for i in range(num_down)]
    layers: list[nn.Module] = []
    label_classes = num_classes if label_inputs else 0
    previous = channels + label_classes
    for i, w in enumerate(widths):
        normalized = batch_norm and i > 0
        layers.append(nn.Conv2d(previous, w, 4, 2, 1, bias=not normalized))
        if normalized:
            layers.append(nn.BatchNorm2d(w))
        layers.append(nn.LeakyReLU(0.2))
        previous = w
    discriminator = ProjectionDiscriminator(nn.Sequential(*layers), nn.Conv2d(previous, 1, end), previous * end * end, num_classes,
                                            label_classes)
    return _finish_discriminator(discriminator, use_spectral_norm)


def mlp_generator(dim: int, latent_dim: int, width: int, num_classes: int, label_inputs: bool = False) -> Generator:
    """4 × [Linear → BN → ReLU] → Linear (the PacGAN/VEEGAN toy generator; see MLP_G_LAYERS)."""
    label_classes = num_classes if label_inputs else 0
    sizes = [latent_dim + label_classes] + [width] * MLP_G_LAYERS
    layers = [nn.Linear(a, b, bias=False) for a, b in itertools.pairwise(sizes)]
    return dcgan_init(Generator(layers, sizes[1:], nn.Linear(width, dim), num_classes, images=False, label_classes=label_classes))


def mlp_discriminator(dim: int, width: int, num_classes: int, batch_norm: bool, use_spectral_norm: bool,
                      label_inputs: bool = False) -> ProjectionDiscriminator:
    """3 × [Linear → LeakyReLU(0.2)] → Linear, optional BN on all but the input layer (see MLP_D_LAYERS)."""
    layers: list[nn.Module] = []
    label_classes = num_classes if label_inputs else 0
    previous = dim + label_classes
    for i in range(MLP_D_LAYERS):
        normalized = batch_norm and i > 0
        layers.append(nn.Linear(previous, width, bias=not normalized))
        if normalized:
            layers.append(nn.BatchNorm1d(width))
        layers.append(nn.LeakyReLU(0.2))
        previous = width
    discriminator = ProjectionDiscriminator(nn.Sequential(*layers), nn.Linear(width, 1), width, num_classes, label_classes)
    return _finish_discriminator(discriminator, use_spectral_norm)


def dcgan_init(module: nn.Module) -> nn.Module:
    """Weights ~ N(0, 0.02), BN gains ~ N(1, 0.02), biases 0 (Radford et al. 2016 §4). The class
    gains and biases of conditional BN stay at 0 (plain BN at the start)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) and m.affine:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
    return module


def _finish_discriminator(discriminator: ProjectionDiscriminator, use_spectral_norm: bool) -> ProjectionDiscriminator:
    dcgan_init(discriminator)
    if discriminator.embed is not None:
        nn.init.normal_(discriminator.embed.weight, 0.0, 0.02)
    if use_spectral_norm:
        # W / σ(W) on every weight layer, the class embedding included (Miyato et al. 2018, Eq. 8;
        # Miyato & Koyama 2018 §5); σ by one power iteration per forward pass in training mode.
        for m in list(discriminator.modules()):
            if isinstance(m, (nn.Conv2d, nn.Linear, nn.Embedding)):
                spectral_norm(m)
    return discriminator


@contextlib.contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """Turn off parameter gradients of ``module`` for a while (gradients still flow through it).

    Used for D in G's phase, whose D weight gradients would be thrown away: measured on CPU for
    the default 28×28 DCGAN at batch 64, G's phase takes about 14% less time (D's phase is as it was).
    """
    flags = [(p, p.requires_grad) for p in module.parameters()]
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
