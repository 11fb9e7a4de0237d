"""Variational autoencoder (Kingma & Welling 2014, "Auto-Encoding Variational Bayes", arXiv:1312.6114).

encoder → q(z|x) = N(μ, σ²) → z = μ + σ·ε → decoder → p(x|z). Trained by maximising the evidence
lower bound (ELBO); sampled by decoding z ~ N(0, I); scored by the importance-weighted bound (IWAE).

With ``num_classes`` K > 0 it is a conditional VAE (Sohn et al. 2015, "Learning Structured Output
Representation using Deep Conditional Generative Models"): the one-hot label y joins the encoder's
features, q(z|x, y), and the code, p(x|z, y); the prior stays N(0, I) for every class. Every method then
takes ``labels`` (one class per image); K = 0 builds exactly the unconditional network.
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
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
    check_widths,
    documented,
)
from genlab.errors import ConfigError
from genlab.models.base import GenerativeModel, Labels, Phase, adam, class_indices, inference, truncated_normal
from genlab.nn import ConvDecoder, ConvEncoder

LOG_2PI = math.log(2 * math.pi)
Likelihood = Literal["bernoulli", "gaussian"]


def reparameterize(mu: torch.Tensor, sigma: torch.Tensor, eps: torch.Tensor | None = None) -> torch.Tensor:
    """z = μ + σ·ε, ε ~ N(0, I) (Kingma & Welling 2014, §2.4, Eq. 10).

    All randomness lives in ε, so z is a differentiable function of μ and σ and gradients of
    the loss flow back into the encoder. Pass ``eps`` to make the draw explicit.
    """
    if eps is None:
        eps = torch.randn_like(mu)
    return mu + sigma * eps


def kl_to_standard_normal(mu: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, σ²) ‖ N(0, I)) in nats, summed over the last dimension.

    Closed form (Kingma & Welling 2014, Appendix B): −KL = ½ Σ_j (1 + log σ_j² − μ_j² − σ_j²).
    """
    return 0.5 * (mu.pow(2) + sigma.pow(2) - 1.0 - 2.0 * torch.log(sigma)).sum(-1)


def standard_normal_log_prob(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I), summed over the last dimension."""
    return -0.5 * (z.pow(2) + LOG_2PI).sum(-1)


def bits_per_dim(log_likelihood: torch.Tensor, image_shape: tuple[int, ...]) -> torch.Tensor:
    """Convert log p(x) in nats per image to bits per dimension: −log p(x) / (D · ln 2)."""
    return -log_likelihood / (math.prod(image_shape) * math.log(2))


class DiagonalGaussian:
    """The posterior q(z|x) = N(μ, diag σ²): sample (reparameterized), mode, log-density and KL."""

    def __init__(self, mu: torch.Tensor, sigma: torch.Tensor) -> None:
        self.mean = mu
        self.stddev = sigma

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        eps = None
        if generator is not None:
            eps = torch.randn(self.mean.shape, generator=generator).to(self.mean)
        return reparameterize(self.mean, self.stddev, eps)

    def mode(self) -> torch.Tensor:
        return self.mean

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log q(z|x), summed over the latent dimension."""
        standardized = (z - self.mean) / self.stddev
        return (-0.5 * (standardized.pow(2) + LOG_2PI) - torch.log(self.stddev)).sum(-1)

    def kl(self) -> torch.Tensor:
        """KL(q ‖ N(0, I)) per item, in nats."""
        return kl_to_standard_normal(self.mean, self.stddev)


@dataclass
class VAEConfig:
    image_shape: tuple[int, int, int] = documented((1, 28, 28), "(channels, height, width) of the images")
    latent_dim: int = documented(16, "size of the code z")
    channels: tuple[int, ...] = documented((32, 64), "conv widths, each halving the resolution")
    hidden_dim: int = documented(256, "fully connected layer between the conv features and (μ, log σ²)")
    likelihood: Likelihood = documented("bernoulli", "p(x|z): bernoulli (BCE) or gaussian (MSE)")
    binarize: bool = documented(False, "dynamic binarization: train on x ~ Bernoulli(pixel), drawn each step")
    gaussian_sigma: float = documented(0.1, "decoder σ of the gaussian likelihood (the initial value if learned)")
    learn_sigma: bool = documented(False, "learn one shared decoder σ (Rybkin et al. 2021, σ-VAE)")
    beta: float = documented(1.0, "weight of the KL term (β-VAE, Higgins et al. 2017, Eq. 4)")
    num_classes: int = documented(0, "> 0: a class-conditional VAE (CVAE, Sohn et al. 2015): the one-hot label "
                                     "enters the encoder and the decoder")

    def __post_init__(self) -> None:
        self.image_shape = check_image_shape("image_shape", self.image_shape)  # type: ignore[assignment]
        self.channels = check_widths("channels", self.channels)
        check_size("latent_dim", self.latent_dim, MAX_LATENT_DIM)
        check_size("hidden_dim", self.hidden_dim, MAX_WIDTH)
        check_positive("gaussian_sigma", self.gaussian_sigma)
        check_positive("beta", self.beta, allow_zero=True)
        check_size("num_classes", self.num_classes, MAX_CLASSES, minimum=0)
        check_choice("likelihood", self.likelihood, Likelihood)
        smallest = 2 ** len(self.channels)
        if min(self.image_shape[1:]) < smallest:
            raise ConfigError(
                f"image_shape {self.image_shape} is too small for {len(self.channels)} downsampling layers "
                f"(needs height and width >= {smallest}); use fewer channels entries"
            )
        check_weights("VAE config", self._weight_count())

    def _weight_count(self) -> int:
        """About how many weights the VAE has (its convs and fully connected layers; biases left out)."""
        channels, height, width = self.image_shape
        widths = (channels, *self.channels)
        convs = 2 * sum(a * b * 16 for a, b in itertools.pairwise(widths))  # encoder and its mirror decoder
        features = self.channels[-1] * (height >> len(self.channels)) * (width >> len(self.channels))
        labels = 2 * self.num_classes * self.hidden_dim  # the one-hot label into each of the two first layers
        return convs + 2 * features * self.hidden_dim + 3 * self.hidden_dim * self.latent_dim + labels


class VAE(GenerativeModel):
    kind = "vae"
    config_class = VAEConfig

    def __init__(self, config: VAEConfig | None = None) -> None:
        config = config or VAEConfig()
        super().__init__(config)
        channels, height, width = config.image_shape
        self.encoder = ConvEncoder(channels, height, width, config.channels)
        feature_shape = self.encoder.feature_shape
        features = math.prod(feature_shape)
        k = config.num_classes  # 0: the unconditional network, layer for layer
        self.to_posterior = nn.Sequential(
            nn.Flatten(), nn.Linear(features + k, config.hidden_dim), nn.ReLU(inplace=True),
            nn.Linear(config.hidden_dim, 2 * config.latent_dim),
        )
        self.from_latent = nn.Sequential(
            nn.Linear(config.latent_dim + k, config.hidden_dim), nn.ReLU(inplace=True),
            nn.Linear(config.hidden_dim, features), nn.ReLU(inplace=True), nn.Unflatten(1, feature_shape),
        )
        self.decoder = ConvDecoder(channels, height, width, config.channels)
        if config.likelihood == "gaussian":
            log_sigma = torch.tensor(math.log(config.gaussian_sigma))
            if config.learn_sigma:
                self.log_sigma = nn.Parameter(log_sigma)
            else:
                self.register_buffer("log_sigma", log_sigma)

    @property
    def grid_columns(self) -> int | None:
        """A conditional VAE's default labels cycle 0..K−1, so a K-wide grid has one class per column."""
        return self.config.num_classes or None

    # ----- labels (conditional VAEs) -----
    def resolve_labels(self, n: int, labels: Labels | None, *, cycle: bool = False) -> torch.Tensor | None:
        """``labels`` as int64 on the model's device, checked; None for an unconditional VAE (which refuses labels).
        A conditional VAE given none cycles 0..K−1 with ``cycle`` (sampling), else it is a ConfigError."""
        k = self.config.num_classes
        if not k:
            self.refuse_labels(labels)
            return None
        if labels is None:
            if cycle:
                return torch.arange(n, device=self.device) % k
            raise ConfigError(f"this VAE is class-conditional (num_classes={k}): pass labels, one class index per image")
        return class_indices(labels, n, k).to(self.device)

    def _with_labels(self, h: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """``h`` (N×D) with the one-hot labels appended (N×(D+K)); ``h`` itself when unconditional."""
        if labels is None:
            return h
        return torch.cat([h, F.one_hot(labels, self.config.num_classes).to(h.dtype)], dim=1)

    # ----- the model -----
    @inference
    def posterior(self, x: torch.Tensor, labels: Labels | None = None) -> DiagonalGaussian:
        """q(z|x) (q(z|x, y) for a conditional VAE) for images ``x`` in [0, 1]."""
        return self._posterior(x, self.resolve_labels(x.shape[0], labels))

    def _posterior(self, x: torch.Tensor, labels: torch.Tensor | None) -> DiagonalGaussian:
        """``posterior`` with labels already resolved (no checks: the training step makes no host sync)."""
        features = self.encoder(x)
        if labels is not None:  # flattened here, with the label beside it; to_posterior's Flatten then leaves it as it is
            features = self._with_labels(features.flatten(1), labels)
        # Called whole, so the hooks the loop's precision puts on each child module see its output.
        mu, log_var = self.to_posterior(features).chunk(2, dim=1)
        # Clamped so exp() cannot overflow or vanish early in training.
        return DiagonalGaussian(mu, torch.exp(0.5 * log_var.clamp(-30.0, 20.0)))

    @inference
    def encode(self, x: torch.Tensor, labels: Labels | None = None) -> torch.Tensor:
        """The posterior mean μ(x) (μ(x, y) when conditional): the usual deterministic code of an image."""
        return self.posterior(x, labels).mean

    def decoder_logits(self, z: torch.Tensor, labels: Labels | None = None) -> torch.Tensor:
        return self._logits(z, self.resolve_labels(z.shape[0], labels))

    def _logits(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """``decoder_logits`` with labels already resolved."""
        return self.decoder(self.from_latent(self._with_labels(z, labels)))

    @inference
    def decode(self, z: torch.Tensor, labels: Labels | None = None) -> torch.Tensor:
        """The mean of p(x|z) (p(x|z, y) when conditional): an image in [0, 1]."""
        return torch.sigmoid(self.decoder_logits(z, labels))

    @inference
    def reconstruct(self, x: torch.Tensor, labels: Labels | None = None) -> torch.Tensor:
        return self.decode(self.encode(x, labels), labels)

    @torch.no_grad()
    def sample(self, n: int, *, seed: int | None = None, labels: Labels | None = None,
               truncation: float | None = None) -> torch.Tensor:
        """Decode z ~ N(0, I) (the prior; truncated to [−τ, τ] with ``truncation`` τ) into ``n`` images.

        ``labels``: the class of each image (conditional VAEs only; default 0, 1, …, K−1, 0, …)."""
        labels = self.resolve_labels(n, labels, cycle=True)
        z = truncated_normal((n, self.config.latent_dim), truncation, self.noise_generator(seed)).to(self.device)
        return self.decode(z, labels)

    # ----- the objective -----
    def reconstruction_nll(self, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """−log p(x|z) per image in nats, from the decoder's logits."""
        if self.config.likelihood == "bernoulli":
            # Bernoulli decoder (Kingma & Welling 2014, Appendix C.1): −log p = Σ BCE(logit, x).
            return F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)
        # Gaussian decoder N(x; mean, σ² I) with mean = sigmoid(logits) (Appendix C.2):
        # −log p = Σ ½((x − mean)/σ)² + log σ + ½ log 2π.
        log_sigma = self.log_sigma
        squared = ((x - torch.sigmoid(logits)) * torch.exp(-log_sigma)).pow(2)
        return (0.5 * squared + log_sigma + 0.5 * LOG_2PI).flatten(1).sum(1)

    def loss(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Negative (β-)ELBO per image in nats: E_q[−log p(x|z)] + β·KL(q(z|x) ‖ N(0, I)).

        Kingma & Welling 2014, Eq. 10 (one reparameterized sample, KL in closed form); β-VAE:
        Higgins et al. 2017, Eq. 4. ``elbo`` is always the β = 1 bound, comparable across runs.
        A conditional VAE bounds log p(x|y) instead (Sohn et al. 2015, Eq. 4, with their input as our
        label y and their output as our image x): E_q(z|x,y)[−log p(x|z, y)] + β·KL(q(z|x, y) ‖ p(z|y)),
        where the prior p(z|y) is N(0, I) for every class (the relaxation Sohn et al. §4 allow, as in
        Kingma et al. 2014's M2, Eq. 6). An unconditional VAE ignores the batch's labels.
        """
        if self.config.num_classes and labels is None:
            raise ConfigError(f"num_classes={self.config.num_classes} needs a labelled dataset; train with labels or set "
                              "num_classes=0")
        labels = labels if self.config.num_classes else None
        if self.config.binarize and self.training:
            x = torch.bernoulli(x)  # dynamic binarization: a fresh binary image each time it is seen
        posterior = self._posterior(x, labels)
        recon = self.reconstruction_nll(self._logits(posterior.sample(), labels), x).mean()
        kl = posterior.kl().mean()
        return {"loss": recon + self.config.beta * kl, "recon": recon, "kl": kl, "elbo": -(recon + kl)}

    def _marginal(self, bound: Callable[[torch.Tensor], torch.Tensor], batch: int) -> torch.Tensor:
        """log p(x) ≥ log Σ_y p(y) exp(B(x|y)), p(y) = 1/K, for a per-class bound B(x|y) ≤ log p(x|y): the sum is at
        most Σ_y p(y) p(x|y) = p(x) (the sum rule, as in Kingma et al. 2014's M2 for unlabelled data, Eq. 7)."""
        k = self.config.num_classes
        per_class = [bound(torch.full((batch,), y, dtype=torch.int64, device=self.device)) for y in range(k)]
        return torch.logsumexp(torch.stack(per_class), dim=0) - math.log(k)

    @torch.no_grad()
    def log_likelihood(self, x: torch.Tensor, num_samples: int = 1, *, seed: int | None = None,
                       max_batch: int = 4096, labels: Labels | None = None) -> torch.Tensor:
        """Importance-weighted lower bound on log p(x) per image, in nats (Burda et al. 2016, Eq. 8):

            L_k = E[log (1/k) Σ_i p(x, z_i) / q(z_i|x)],  z_i ~ q(z|x).

        k = 1 is the (single-sample) ELBO; L_k ≤ L_{k+1} ≤ log p(x) (Burda et al. Theorem 1), so
        −L_k is an upper bound on the negative log-likelihood. Decodes at most ``max_batch``
        images at once. A conditional VAE bounds log p(x|y) given ``labels``; without them, log p(x)
        with a uniform p(y) over the K classes (see ``_marginal``; K times the work).
        """
        if num_samples < 1:
            raise ConfigError(f"num_samples must be >= 1, got {num_samples}")
        if self.config.num_classes and labels is None:
            return self._marginal(lambda y: self.log_likelihood(x, num_samples, seed=seed, max_batch=max_batch, labels=y),
                                  x.shape[0])
        generator = self.noise_generator(seed)
        batch = x.shape[0]
        labels = self.resolve_labels(batch, labels)
        posterior = self._posterior(x, labels)
        chunk = max(1, min(num_samples, max_batch // max(batch, 1)))
        log_weights = []
        for start in range(0, num_samples, chunk):
            m = min(chunk, num_samples - start)
            mu = posterior.mean.unsqueeze(1).expand(-1, m, -1)
            sigma = posterior.stddev.unsqueeze(1).expand(-1, m, -1)
            eps = torch.randn(mu.shape, generator=generator).to(mu) if generator else torch.randn_like(mu)
            z = reparameterize(mu, sigma, eps)  # batch × m × latent
            logits = self._logits(z.reshape(batch * m, -1), None if labels is None else labels.repeat_interleave(m))
            targets = x.unsqueeze(1).expand(-1, m, *x.shape[1:]).reshape(batch * m, *x.shape[1:])
            log_px_given_z = -self.reconstruction_nll(logits, targets).view(batch, m)
            log_q = DiagonalGaussian(mu, sigma).log_prob(z)
            log_weights.append(log_px_given_z + standard_normal_log_prob(z) - log_q)
        return torch.logsumexp(torch.cat(log_weights, dim=1), dim=1) - math.log(num_samples)

    @torch.no_grad()
    def elbo(self, x: torch.Tensor, labels: Labels | None = None) -> torch.Tensor:
        """The ELBO per image in nats, with the KL term in closed form (lower variance than L_1).
        A conditional VAE without ``labels``: the bound on log p(x) with a uniform p(y) (see ``_marginal``)."""
        if self.config.num_classes and labels is None:
            return self._marginal(lambda y: self.elbo(x, y), x.shape[0])
        labels = self.resolve_labels(x.shape[0], labels)
        posterior = self._posterior(x, labels)
        return -(self.reconstruction_nll(self._logits(posterior.sample(), labels), x) + posterior.kl())

    # ----- what the training loop needs -----
    def make_optimizers(self, train: TrainConfig) -> dict[str, torch.optim.Optimizer]:
        return {"vae": adam(self.parameters(), lr=train.lr)}

    def training_phases(self) -> list[Phase]:
        return [Phase("vae", optimizer="vae", loss=self.loss)]
