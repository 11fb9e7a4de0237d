"""Generative adversarial network (Goodfellow et al. 2014, "Generative Adversarial Nets", arXiv:1406.2661).

A generator G maps noise z ~ N(0, I) to samples; a discriminator D scores samples as real or fake.
Each training step updates D (``d_steps`` times, on fresh batches) and then G (on D's last batch,
so a conditional G copies the data's labels; with one D step, on the very fakes D just saw), plus
R1 on D every ``r1_every`` steps when enabled: three phases of the one training loop (models/base.py).
D sees images in [-1, 1], G ends in tanh; ``sample`` returns [0, 1] like every model here. Point data (N×D)
passes through unscaled.
"""
from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import nn

from genlab.config import (
    MAX_CLASSES,
    MAX_LATENT_DIM,
    MAX_WIDTH,
    TrainConfig,
    check_choice,
    check_image_shape,
    check_positive,
    check_size,
    check_weights,
    documented,
)
from genlab.errors import ConfigError
from genlab.models.base import GenerativeModel, Labels, Phase, adam, class_indices, inference, truncated_normal
from genlab.models.gan.big import BigGenerator, big_discriminator
from genlab.models.gan.losses import GAN_LOSSES, contest_stats, gradient_penalty, orthogonal_regularization, r1_penalty, regularized_weights
from genlab.models.gan.nets import (
    DCGAN_RESOLUTIONS,
    MLP_D_LAYERS,
    MLP_G_LAYERS,
    check_image_size,
    dcgan_discriminator,
    dcgan_generator,
    frozen,
    mlp_discriminator,
    mlp_generator,
)
from genlab.models.gan.style import STYLE_RESOLUTIONS, StyleGenerator, channel_widths, style_discriminator
from genlab.nn.diffaugment import diff_augment, parse_policy
from genlab.nn.modes import eval_mode

Architecture = Literal["auto", "dcgan", "mlp", "style", "big"]
Loss = Literal["auto", "minimax", "ns", "hinge", "wgan-gp", "lsgan"]
DiscriminatorNorm = Literal["auto", "batch", "none"]
MAX_D_STEPS = 100  # D updates per G update (WGAN-GP uses 5)
MAX_R1_EVERY = 1 << 20
MAX_MAPPING_LAYERS = 16
# The style and big recipes (each paper's optimiser, scaled down): lr_g, lr_d, betas. StyleGAN2 trains at 0.0025 with
# β = (0, 0.99) (Karras et al. 2020, App. B / its config "paper256"); BigGAN at β = (0, 0.999) with 2e-4 for both G and D
# in its CIFAR recipe (BigGAN-PyTorch's launch_cifar_ema.sh; 1e-4/4e-4 at 128 px).
RECIPES: dict[str, tuple[float, float, tuple[float, float]]] = {"style": (2e-3, 2e-3, (0.0, 0.99)), "big": (2e-4, 2e-4, (0.0, 0.999))}


@dataclass
class GANConfig:
    """What GAN to build and how to optimise it; ``None``/"auto" fields are filled in on construction.

    The defaults train well on 28×28 grayscale images such as Fashion-MNIST: the DCGAN recipe
    (Radford et al. 2016: latent 100, widths 64, batch norm in G and D, Adam β = (0.5, 0.999)) with
    the non-saturating loss and one D step per G step. Unconditional: G four times faster than D
    (lr_g 4e-4, lr_d 1e-4); measured on the bundled fashion-mnist-mini (6000 images, batch 64,
    10 epochs on CPU): with DCGAN's equal 2e-4, D wins (D(x) ≈ 0.84, D(G(z)) ≈ 0.16, 95% accuracy)
    and samples stay blotchy; with these rates D(x) ≈ 0.60, D(G(z)) ≈ 0.40 and the samples are
    recognisable shirts, trousers, bags and shoes. Conditional: labels also as inputs (``label_inputs``)
    and equal rates 4e-4, which with the CLI's EMA of the weights (decay 0.99) reach judge label accuracy
    0.84 after 951 steps on fashion-mnist-mini, against 0.40 for the earlier defaults (projection + CBN
    alone, lr_d 1e-4, no EMA); lr_d 1e-4 / 2e-4 / 4e-4 scored 0.79 / 0.82 / 0.84 (one seed each,
    benchmarks/time_to_quality.py with --set; the full curves are in benchmarks/results/time_to_quality.md).
    For point data (image_shape=(D,)) "auto" picks the PacGAN/VEEGAN toy MLPs and a 2-D latent. The style and big
    architectures (style.py, big.py) bring their papers' optimisers (RECIPES) and widths 16, at which a training step
    at 64 px costs about as much as DCGAN's at 64 on a CPU (docs/guides/gan.md has the measurement).
    """

    # What a run saved before a field existed meant (genlab.config.config_from_dict's ``saved``).
    SAVED_BEFORE: ClassVar[dict[str, Any]] = {"label_inputs": False}

    image_shape: tuple[int, ...] = documented((1, 28, 28), "(C, H, W) images or (D,) points")
    latent_dim: int | None = documented(None, "size of z (default: 100 for images, as DCGAN; 2 for points, as PacGAN's toys)")
    num_classes: int = documented(0, "> 0: a class-conditional G (conditional batch norm) and projection D")
    label_inputs: bool = documented(True, "conditional: the one-hot label also enters G beside z and D beside the image "
                                          "(Mirza & Osindero 2014), for classes learnt in hundreds of steps")
    architecture: Architecture = documented("auto", "dcgan (images), mlp (points), style (StyleGAN2-like: mapping z→w, "
                                                    "modulated convs, noise, truncation in W) or big (BigGAN-like: hierarchical z, "
                                                    "self-attention, spectral norm); auto: dcgan or mlp by the data")
    g_width: int | None = documented(None, "G's width (default: 64, DCGAN's ngf; 16 for style and big; 400 MLP hidden units)")
    d_width: int | None = documented(None, "D's width (default: 64, DCGAN's ndf; 16 for style and big; 200 MLP hidden units)")
    d_norm: DiscriminatorNorm = documented("auto", "batch norm in D (dcgan, mlp); auto: DCGAN's, unless a gradient penalty or "
                                                   "spectral norm is on; style and big have none")
    loss: Loss = documented("auto", "adversarial loss (ns: non-saturating); auto: hinge for big (BigGAN), ns otherwise")
    # Separate rates for G and D (TTUR, Heusel et al. 2017); see the docstring.
    lr_g: float | None = documented(None, "G's Adam learning rate (default: 4e-4; 2e-3 for style, 2e-4 for big)")
    lr_d: float | None = documented(None, "D's Adam learning rate (TTUR: may differ from G's; default: 4e-4 "
                                          "when conditional, 1e-4 otherwise; 2e-3 for style, 2e-4 for big)")
    betas: tuple[float, float] | None = documented(None, "Adam's β1,β2 (default: 0.5,0.999, DCGAN §4; 0,0.99 for style, "
                                                         "0,0.999 for big)")
    d_steps: int = documented(1, "D updates per G update (5 in WGAN-GP's Algorithm 1)")
    gp_weight: float = documented(10.0, "λ of the wgan-gp penalty (Gulrajani et al. 2017, Eq. 3)")
    r1_gamma: float | None = documented(None, "γ of the R1 penalty (Mescheder et al. 2018, Eq. 9); 0: off (default; for "
                                              "style 0.0002·H·W/64, StyleGAN2-ADA's γ = 0.0002·res²/batch at batch 64)")
    r1_every: int = documented(16, "lazy regularisation: R1 every K steps, weighted by K (StyleGAN2 §3.1)")
    spectral_norm: bool = documented(False, "spectral norm on every D layer (Miyato et al. 2018)")
    diffaugment: str = documented("", "DiffAugment policy for D's inputs, e.g. translation,cutout,color")
    mapping_layers: int = documented(4, "style: layers of the mapping network z → w (StyleGAN: 8)")
    style_mixing: float = documented(0.9, "style: probability of style-mixing regularisation (StyleGAN §3.1: 0.9); 0: off")
    rgb_skips: bool = documented(True, "style: a toRGB at every resolution, summed (StyleGAN2's skip G); off: only the last")
    attention: int | None = documented(None, "big: side of the feature maps with self-attention in G and D (SAGAN); "
                                             "default 16 (14 at 28 px, 8 at 16 px); 0: none")
    ortho_reg: float | None = documented(None, "β of the orthogonal regularisation of G's weights (BigGAN Eq. 3); "
                                               "default 1e-4 for big, 0 (off) otherwise")

    def __post_init__(self) -> None:
        self.image_shape = check_image_shape("image_shape", self.image_shape, points=True)
        points = len(self.image_shape) == 1
        check_choice("architecture", self.architecture, Architecture)
        check_choice("loss", self.loss, Loss)
        check_choice("d_norm", self.d_norm, DiscriminatorNorm)
        if self.architecture == "auto":
            self.architecture = "mlp" if points else "dcgan"
        modern = self.architecture in RECIPES  # style or big
        lr_g, lr_d, betas = RECIPES.get(self.architecture, (4e-4, None, (0.5, 0.999)))
        if self.betas is None:
            self.betas = betas
        if not isinstance(self.betas, tuple | list):
            raise ConfigError(f"betas must be two numbers in [0, 1), got {self.betas!r}")
        self.betas = tuple(self.betas)  # type: ignore[assignment]
        if modern:
            self._check_modern(points)
        if self.loss == "auto":
            self.loss = "hinge" if self.architecture == "big" else "ns"
        if self.r1_gamma is None:
            self.r1_gamma = 0.0002 * self.image_shape[-1] ** 2 / 64 if self.architecture == "style" else 0.0
        if self.ortho_reg is None:
            self.ortho_reg = 1e-4 if self.architecture == "big" else 0.0
        if self.lr_g is None:
            self.lr_g = lr_g
        if self.lr_d is None:
            self.lr_d = lr_d
        if self.architecture == "mlp" and not points:
            raise ConfigError(f"architecture 'mlp' is for point data (image_shape=(dim,)), got image_shape {self.image_shape}; use 'dcgan'")
        if self.architecture == "dcgan":
            if points:
                raise ConfigError(f"architecture 'dcgan' needs images (C, H, W), got image_shape {self.image_shape}; use 'mlp'")
            check_image_size(self.image_shape)
        mlp = self.architecture == "mlp"
        if self.latent_dim is None:
            self.latent_dim = 2 if mlp else 128 if self.architecture == "style" else 100
        if self.g_width is None:
            self.g_width = 400 if mlp else 16 if modern else 64
        if self.d_width is None:
            self.d_width = 200 if mlp else 16 if modern else 64
        if self.lr_d is None:
            self.lr_d = 4e-4 if self.num_classes else 1e-4  # measured: see the class docstring
        if self.d_norm == "auto" and modern:
            self.d_norm = "none"
        elif self.d_norm == "auto":
            plain_dcgan = not mlp and self.loss != "wgan-gp" and not self.spectral_norm and self.r1_gamma == 0
            self.d_norm = "batch" if plain_dcgan else "none"
        check_size("latent_dim", self.latent_dim, MAX_LATENT_DIM)
        check_size("g_width", self.g_width, MAX_WIDTH)
        check_size("d_width", self.d_width, MAX_WIDTH)
        check_size("d_steps", self.d_steps, MAX_D_STEPS)
        check_size("r1_every", self.r1_every, MAX_R1_EVERY)
        check_size("num_classes", self.num_classes, MAX_CLASSES, minimum=0)
        check_positive("lr_g", self.lr_g)
        check_positive("lr_d", self.lr_d)
        check_positive("gp_weight", self.gp_weight, allow_zero=True)
        check_positive("r1_gamma", self.r1_gamma, allow_zero=True)
        check_positive("ortho_reg", self.ortho_reg, allow_zero=True)
        check_size("mapping_layers", self.mapping_layers, MAX_MAPPING_LAYERS)
        check_positive("style_mixing", self.style_mixing, allow_zero=True)
        if self.style_mixing > 1:
            raise ConfigError(f"style_mixing is a probability in [0, 1], got {self.style_mixing}")
        if self.architecture == "big" and self.latent_dim < len(channel_widths(self.image_shape[-1], 1)):
            chunks = len(channel_widths(self.image_shape[-1], 1))
            raise ConfigError(f"latent_dim {self.latent_dim}: the big G splits z into {chunks} chunks (one for the first layer, "
                              f"one per block) at {self.image_shape[-1]} px; use latent_dim >= {chunks}")
        if len(self.betas) != 2 or not all(isinstance(b, int | float) and 0.0 <= b < 1.0 for b in self.betas):
            raise ConfigError(f"betas must be two numbers in [0, 1), got {self.betas}")
        check_weights("GAN config", self._weight_count())
        if self.loss == "wgan-gp" and self.d_norm == "batch":
            raise ConfigError("d_norm 'batch' cannot be used with loss 'wgan-gp': the penalty is per sample and batch norm mixes "
                              "samples; use d_norm 'none' (Gulrajani et al. 2017 §4)")
        if parse_policy(self.diffaugment) and points:
            raise ConfigError(f"diffaugment {self.diffaugment!r} augments images; it does not apply to point data, use ''")

    def _check_modern(self, points: bool) -> None:
        """The style and big architectures' own checks (before their defaults are filled in)."""
        name = self.architecture
        if points:
            raise ConfigError(f"architecture {name!r} needs images (C, H, W), got image_shape {self.image_shape}; use 'mlp'")
        _, height, width = self.image_shape
        if height != width or height not in STYLE_RESOLUTIONS:
            sizes = ", ".join(f"{s}×{s}" for s in STYLE_RESOLUTIONS)
            raise ConfigError(f"image_shape {tuple(self.image_shape)}: architecture {name!r} takes {sizes} images; resize the data")
        if self.d_norm == "batch":
            raise ConfigError(f"d_norm 'batch' applies to dcgan and mlp; the {name} D has no batch norm (use 'auto')")
        if self.spectral_norm and name == "style":
            raise ConfigError("spectral_norm applies to dcgan, mlp (and is always on in big); the style D uses the equalised "
                              "learning rate instead: leave it off")
        if name == "big":
            if self.attention is None:
                self.attention = min(16, height // 2) if height != 28 else 14
            sides = list(channel_widths(height, 1))[1:]
            if self.attention and self.attention not in sides:
                raise ConfigError(f"attention {self.attention}: the big G's blocks make {', '.join(map(str, sides))}-pixel maps "
                                  f"at {height} px; use one of those, or 0 for none")
        elif self.attention:
            raise ConfigError(f"attention applies to architecture 'big', not {name!r}; leave it out")

    def _weight_count(self) -> int:
        """About how many weights G and D have (convs, linear layers, class embeddings; biases left out)."""
        if self.architecture in RECIPES:  # counted exactly, on the meta device (no memory)
            with torch.device("meta"):
                return sum(p.numel() for net in build_networks(self) for p in net.parameters())
        latent, g, d, classes = self.latent_dim or 0, self.g_width or 0, self.d_width or 0, self.num_classes
        inputs = classes if self.label_inputs else 0  # one-hot labels beside z and beside D's input
        latent += inputs
        if self.architecture == "mlp":
            dim = self.image_shape[0]
            return (inputs * d + latent * g + (MLP_G_LAYERS - 1) * g * g + g * dim + 2 * MLP_G_LAYERS * classes * g
                    + dim * d + (MLP_D_LAYERS - 1) * d * d + d + classes * d)
        channels, size, _ = self.image_shape
        start, layers = DCGAN_RESOLUTIONS[size]
        g_widths = [g * 2 ** i for i in reversed(range(layers))]
        d_widths = [channels + inputs] + [d * 2 ** i for i in range(layers)]
        generator = (latent * g_widths[0] * start * start + sum(16 * a * b for a, b in itertools.pairwise(g_widths))
                     + 16 * g_widths[-1] * channels + 2 * classes * sum(g_widths))
        discriminator = sum(16 * a * b for a, b in itertools.pairwise(d_widths)) + (1 + classes) * d_widths[-1] * start * start
        return generator + discriminator


def build_networks(config: GANConfig) -> tuple[nn.Module, nn.Module]:
    """G and D for ``config`` (its "auto" fields filled in)."""
    k, batch_norm, inputs, shape = config.num_classes, config.d_norm == "batch", config.label_inputs, config.image_shape
    if config.architecture == "style":  # the class enters G through the mapping network, D by projection (and inputs)
        return (StyleGenerator(shape, config.latent_dim, config.g_width, k, config.mapping_layers, config.rgb_skips),
                style_discriminator(shape, config.d_width, k, inputs))
    if config.architecture == "big":  # the class enters G through the shared embedding in every block
        return (BigGenerator(shape, config.latent_dim, config.g_width, k, config.attention),
                big_discriminator(shape, config.d_width, k, config.attention, inputs))
    if config.architecture == "dcgan":
        return (dcgan_generator(shape, config.latent_dim, config.g_width, k, inputs),
                dcgan_discriminator(shape, config.d_width, k, batch_norm, config.spectral_norm, inputs))
    (dim,) = shape
    return (mlp_generator(dim, config.latent_dim, config.g_width, k, inputs),
            mlp_discriminator(dim, config.d_width, k, batch_norm, config.spectral_norm, inputs))


class GAN(GenerativeModel):
    kind = "gan"
    config_class = GANConfig
    monitor_columns = ("D/real_prob", "D/fake_prob")  # σ(D(x)) and σ(D(G(z))): both stuck near 0 or 1 = collapse

    def __init__(self, config: GANConfig | None = None) -> None:
        config = config or GANConfig()
        super().__init__(config)
        self.generator, self.discriminator = build_networks(config)
        self.d_loss_fn, self.g_loss_fn = GAN_LOSSES[config.loss]
        self._fakes_for_g: tuple[torch.Tensor, torch.Tensor | None] | None = None  # D's phase → G's phase

    @property
    def grid_columns(self) -> int | None:
        """A conditional GAN's default labels cycle 0..K−1, so a K-wide grid has one class per column."""
        return self.config.num_classes or None

    @property
    def is_points(self) -> bool:
        return len(self.config.image_shape) == 1

    # ----- ranges, labels, noise -----
    def to_model_range(self, x: torch.Tensor) -> torch.Tensor:
        """Images [0, 1] → [-1, 1], the range of G's tanh; points unchanged."""
        return x if self.is_points else x * 2.0 - 1.0

    def from_model_range(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.is_points else ((x + 1.0) * 0.5).clamp(0.0, 1.0)

    def resolve_labels(self, n: int, labels: Sequence[int] | torch.Tensor | None) -> torch.Tensor | None:
        """Labels as int64 on the model's device; None for a conditional model cycles 0..K−1."""
        k = self.config.num_classes
        if not k:
            if labels is not None:
                raise ConfigError("labels were given but this GAN is unconditional (num_classes=0); leave labels out")
            return None
        if labels is None:
            return torch.arange(n, device=self.device) % k
        return class_indices(labels, n, k, per="sample").to(self.device)

    def augment(self, x: torch.Tensor) -> torch.Tensor:
        """DiffAugment on what D sees, real and fake alike (identity when the policy is "")."""
        return diff_augment(x, self.config.diffaugment) if self.config.diffaugment else x

    # ----- sampling -----
    @inference
    def generate(self, z: torch.Tensor, labels: Labels | None = None) -> torch.Tensor:
        """G(z) in [0, 1] (points as they are); differentiable in z when z requires grad (or in
        training). Runs G in its current mode: call ``eval()`` first for inference (batch-norm
        running statistics)."""
        z = z.to(self.device)
        return self.from_model_range(self.generator(z, self.resolve_labels(z.shape[0], labels)))

    @torch.no_grad()
    def sample(self, n: int, *, seed: int | None = None, labels: Labels | None = None,
               truncation: float | None = None) -> torch.Tensor:
        """``n`` samples from G, as float in [0, 1], N×C×H×W (points N×D as they are).

        ``labels``: the class of each sample (conditional models; default 0, 1, …, K−1, 0, …).
        ``seed``: the same seed gives the same samples, without touching the global RNG.
        ``truncation`` τ: draw z from N(0, I) truncated to [−τ, τ] (see :func:`truncated_normal`). For the style
        architecture it is ψ ≥ 0 of the truncation in W instead: w' = w̄ + ψ(w − w̄) (ψ = 0: the mean w's image for
        every z; 1: none). In eval mode the style G adds its fixed noise maps, so samples depend on z alone.
        """
        labels = self.resolve_labels(n, labels)
        if self.config.architecture != "style":
            z = truncated_normal((n, self.config.latent_dim), truncation, self.noise_generator(seed))
            with eval_mode(self.generator):
                return self.generate(z, labels)
        if truncation is not None and not truncation >= 0:
            raise ConfigError(f"truncation ψ of a style GAN must be >= 0, got {truncation!r}")
        z = truncated_normal((n, self.config.latent_dim), None, self.noise_generator(seed)).to(self.device)
        with eval_mode(self.generator):
            return self.from_model_range(self.generator.synthesis(self.generator.ws(z, labels, truncation)))

    @torch.no_grad()
    def mix(self, row_seeds: Sequence[int], column_seeds: Sequence[int], layer: int | None = None, *,
            truncation: float | None = None) -> torch.Tensor:
        """Style mixing (StyleGAN §3.1, Fig. 3), R×K×C×H×W in [0, 1]: image [i, j] takes the latents of
        ``row_seeds[i]`` for the layers before ``layer`` (coarse styles) and those of ``column_seeds[j]`` from
        ``layer`` on (fine styles). Each seed's own image is ``sample(1, seed=seed)``. ``layer``: 1..num_ws − 1,
        default the first 16-pixel layer (StyleGAN's coarse 4²–8² against the rest). A conditional model takes
        class 0, 1, ... for the rows and the columns in turn. ``truncation``: ψ as in ``sample``."""
        if self.config.architecture != "style":
            raise ConfigError(f"style mixing needs architecture 'style'; this GAN is {self.config.architecture!r}")
        generator = self.generator
        layer = generator.coarse_layers if layer is None else layer
        if not 1 <= layer < generator.num_ws:
            raise ConfigError(f"mixing layer {layer}: this style G has layers 1..{generator.num_ws - 1} to mix from")
        if truncation is not None and not truncation >= 0:
            raise ConfigError(f"truncation ψ of a style GAN must be >= 0, got {truncation!r}")

        def latents(seeds: Sequence[int]) -> torch.Tensor:
            z = torch.cat([truncated_normal((1, self.config.latent_dim), None, self.noise_generator(s)) for s in seeds])
            return generator.ws(z.to(self.device), self.resolve_labels(len(seeds), None), truncation)

        rows, columns = latents(row_seeds), latents(column_seeds)
        r, k = rows.shape[0], columns.shape[0]
        ws = torch.cat([rows[:, None, :layer].expand(-1, k, -1, -1), columns[None, :, layer:].expand(r, -1, -1, -1)], dim=2)
        with eval_mode(generator):
            images = self.from_model_range(generator.synthesis(ws.reshape(r * k, *ws.shape[2:])))
        return images.reshape(r, k, *images.shape[1:])

    # ----- the objective: one function per training phase -----
    def _training_labels(self, labels: torch.Tensor | None) -> torch.Tensor | None:
        if not self.config.num_classes:
            return None
        if labels is None:
            raise ConfigError(f"num_classes={self.config.num_classes} needs a labelled dataset; train with labels or set num_classes=0")
        return labels

    def discriminator_loss(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """D's loss on a real batch and as many fakes (with the batch's labels); fakes need no G graph."""
        labels = self._training_labels(labels)
        real = self.to_model_range(x)
        z = torch.randn(x.shape[0], self.config.latent_dim, device=x.device)
        if self.config.d_steps == 1 and torch.is_grad_enabled():
            # G's forward pass is run once per step, as in the PyTorch DCGAN example: these fakes,
            # with their G graph, are handed to G's phase; D trains on them detached.
            fake_with_graph = self.fakes(z, labels)
            self._fakes_for_g = (fake_with_graph, labels)
            fake = fake_with_graph.detach()
        else:
            with torch.no_grad():
                fake = self.fakes(z, labels)
        real, fake = self.augment(real), self.augment(fake)
        real_logits = self.discriminator(real, labels)
        fake_logits = self.discriminator(fake, labels)
        loss = self.d_loss_fn(real_logits, fake_logits)
        out = contest_stats(real_logits, fake_logits)
        if self.config.loss == "wgan-gp":
            out["gp"] = gradient_penalty(lambda v: self.discriminator(v, labels), real, fake)
            loss = loss + self.config.gp_weight * out["gp"]
        return {"loss": loss, **out}

    def generator_loss(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """G's loss on the fakes D's phase just made (see ``discriminator_loss``), scored by the updated D;
        fresh fakes when there are none (``d_steps`` > 1, or called on its own). ``x`` only sets the
        batch size (and its labels the classes)."""
        labels = self._training_labels(labels)
        fakes, self._fakes_for_g = self._fakes_for_g, None
        if fakes is not None and fakes[0].shape[0] == x.shape[0] and fakes[1] is labels:  # the same batch as D's
            fake = fakes[0]
        else:
            fake = self.fakes(torch.randn(x.shape[0], self.config.latent_dim, device=x.device), labels)
        with frozen(self.discriminator):
            fake_logits = self.discriminator(self.augment(fake), labels)
        out = {"loss": self.g_loss_fn(fake_logits), "fake_prob": torch.sigmoid(fake_logits).mean()}
        if self.config.ortho_reg > 0:  # BigGAN Eq. 3, on every conv and linear weight of G
            out["ortho"] = orthogonal_regularization(regularized_weights(self.generator), self.config.ortho_reg)
            out["loss"] = out["loss"] + out["ortho"]
        return out

    def fakes(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """G(z) for training; the style G with style-mixing regularisation (StyleGAN §3.1): with probability
        ``style_mixing`` a sample takes a second z's latents from a random layer on."""
        if self.config.architecture != "style" or not self.config.style_mixing:
            return self.generator(z, labels)
        generator = self.generator
        ws = generator.mix_ws(generator.ws(z, labels), generator.ws(torch.randn_like(z), labels), self.config.style_mixing)
        return generator.synthesis(ws)

    def r1_loss(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """R1 on real data, run every ``r1_every`` steps and weighted by it (lazy regularisation,
        Karras et al. 2020, StyleGAN2 §3.1), so on average it weighs as much as every-step R1."""
        labels = self._training_labels(labels)
        real = self.augment(self.to_model_range(x))
        r1 = r1_penalty(lambda v: self.discriminator(v, labels), real, self.config.r1_gamma)
        return {"loss": r1 * self.config.r1_every, "r1": r1}

    # ----- what the training loop needs -----
    def make_optimizers(self, train: TrainConfig) -> dict[str, torch.optim.Optimizer]:
        """Adam for each player with its own rate (``train.lr`` is not used: GANs need two)."""
        betas = tuple(self.config.betas)
        return {
            "D": adam(self.discriminator.parameters(), lr=self.config.lr_d, betas=betas),
            "G": adam(self.generator.parameters(), lr=self.config.lr_g, betas=betas),
        }

    def training_phases(self) -> list[Phase]:
        phases = [
            Phase("D", optimizer="D", loss=self.discriminator_loss, repeats=self.config.d_steps),
            Phase("G", optimizer="G", loss=self.generator_loss, new_batch=False),
        ]
        if self.config.r1_gamma > 0:
            phases.append(Phase("D_reg", optimizer="D", loss=self.r1_loss, every=self.config.r1_every))
        return phases
