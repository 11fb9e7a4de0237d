"""Image-level metrics: sharpness, PSNR, SSIM, and how evenly an interpolation path moves.

Images are N×C×H×W float tensors in [0, 1] (any float dtype, any device); everything is computed in float64.
Per-image functions return a float64 tensor (N,); summaries return plain Python floats or dicts of floats.
"""
from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from genlab.errors import ConfigError
from genlab.metrics.distribution import _as_float64  # one input check for every metric

# The 4-neighbour discrete Laplacian (OpenCV's Laplacian with ksize=1).
_LAPLACIAN = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]], dtype=torch.float64)


# ------------------------------------------------------------------------------------------- sharpness


def laplacian_energy(images: torch.Tensor) -> torch.Tensor:
    """Variance of the Laplacian per image: the focus measure of Pech-Pacheco et al. 2000 ("Diatom autofocusing
    in brightfield microscopy: a comparative study", the "variance of Laplacian" operator).

    The 3×3 Laplacian [[0, 1, 0], [1, −4, 1], [0, 1, 0]] is applied to each channel on the valid region only
    (an (H−2)×(W−2) response, no padding, so image borders add no false edges); the population variance of the
    response is taken per channel and averaged over channels. Blur removes high frequencies and lowers it;
    a constant image gives 0. Needs H, W ≥ 3. Returns a float64 tensor (N,).
    """
    images = _check_images(images, "images", "laplacian_energy", min_size=3)
    channels = images.shape[1]
    kernel = _LAPLACIAN.to(images.device).expand(channels, 1, 3, 3)
    response = F.conv2d(images, kernel, groups=channels)  # N×C×(H−2)×(W−2)
    return response.flatten(2).var(dim=2, correction=0).mean(dim=1)


def sharpness(images: torch.Tensor, reference: torch.Tensor | None = None) -> float:
    """Mean ``laplacian_energy`` of ``images``; with ``reference`` images (e.g. real data), the ratio
    mean energy(images) / mean energy(reference): 1.0 is as sharp as the reference, below 1 blurrier.

    Only compare images of the same size and content type: the energy scales with image content and resolution.
    """
    energy = float(laplacian_energy(images).mean())
    if reference is None:
        return energy
    reference_energy = float(laplacian_energy(reference).mean())
    if reference_energy == 0:
        raise ConfigError("sharpness: reference images are all constant (Laplacian energy 0), so no ratio exists")
    return energy / reference_energy


# ------------------------------------------------------------------------------------------- reconstruction


def psnr(a: torch.Tensor, b: torch.Tensor, *, data_range: float = 1.0) -> torch.Tensor:
    """Peak signal-to-noise ratio per image, 10·log10(data_range² / MSE) in dB, MSE over C×H×W.

    Identical images give inf. Returns a float64 tensor (N,).
    """
    a, b = _check_pair(a, b, "psnr", min_size=1)
    data_range = _check_positive(data_range, "data_range", "psnr")
    mse = (a - b).square().flatten(1).mean(dim=1)
    return 10 * torch.log10(data_range ** 2 / mse)  # mse = 0 → inf


def ssim(a: torch.Tensor, b: torch.Tensor, *, data_range: float = 1.0, window_size: int = 11,
         sigma: float = 1.5, where: torch.Tensor | None = None) -> torch.Tensor:
    """Structural similarity per image (Wang et al. 2004, "Image Quality Assessment: From Error Visibility to
    Structural Similarity", Eq. 13, with the paper's K1 = 0.01, K2 = 0.03 and 11×11 Gaussian window, σ = 1.5):
        SSIM(x, y) = (2 μx μy + C1)(2 σxy + C2) / ((μx² + μy² + C1)(σx² + σy² + C2)),  C_i = (K_i · data_range)²
    with local means, variances and covariance weighted by the normalised Gaussian window. The map is computed
    on the valid region only (windows fully inside the image, as the authors' ``ssim_index.m``), averaged over
    positions and channels. 1 for identical images. Needs H, W ≥ ``window_size``. Returns a float64 tensor (N,).

    ``where`` (a mask broadcastable to N×1×H×W; nonzero = counted): the mean over those pixels (and the
    channels) instead, e.g. the holes of an inpainting. Every pixel then needs a value, so windows reach past
    the border by symmetric reflection (… c b a | a b c …; any H, W ≥ 1). NaN for an image with no counted pixel.
    """
    fn = "ssim"
    if isinstance(window_size, bool) or not isinstance(window_size, int) or window_size < 1 or window_size % 2 == 0:
        raise ConfigError(f"{fn}: window_size must be an odd int >= 1, got {window_size!r}")
    sigma = _check_positive(sigma, "sigma", fn)
    data_range = _check_positive(data_range, "data_range", fn)
    a, b = _check_pair(a, b, fn, min_size=window_size if where is None else 1)
    n, _, height, width = a.shape
    if where is None:
        return _ssim_map(a, b, data_range, window_size, sigma, reflect=False).flatten(1).mean(dim=1)
    weights = torch.as_tensor(where).detach().to(a.device)
    while weights.dim() < 4:
        weights = weights.unsqueeze(0)
    try:
        weights = (weights != 0).to(torch.float64).expand(n, 1, height, width)
    except RuntimeError:
        raise ConfigError(f"{fn}: where must broadcast to {n}×1×{height}×{width}, got shape "
                          f"{tuple(torch.as_tensor(where).shape)}") from None
    values = _ssim_map(a, b, data_range, window_size, sigma, reflect=True) * weights
    return values.sum(dim=(1, 2, 3)) / (weights.sum(dim=(1, 2, 3)) * a.shape[1])  # 0/0 = NaN without a pixel


def _ssim_map(a: torch.Tensor, b: torch.Tensor, data_range: float, window_size: int, sigma: float, *,
              reflect: bool) -> torch.Tensor:
    """The SSIM index of Eq. 13 at every window position: N×C×(H−w+1)×(W−w+1) (valid windows), or N×C×H×W
    with the images extended by symmetric reflection (``reflect``)."""
    channels, height, width = a.shape[1:]
    offsets = torch.arange(window_size, dtype=torch.float64, device=a.device) - (window_size - 1) / 2
    gaussian = torch.exp(-offsets.square() / (2 * sigma ** 2))
    gaussian = gaussian / gaussian.sum()
    if reflect:
        radius = window_size // 2
        rows, columns = _symmetric(height, radius, a.device), _symmetric(width, radius, a.device)

    def local_mean(x: torch.Tensor) -> torch.Tensor:  # separable Gaussian filter
        if reflect:
            x = x[:, :, rows][:, :, :, columns]
        x = F.conv2d(x, gaussian.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)
        return F.conv2d(x, gaussian.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)

    mu_a, mu_b = local_mean(a), local_mean(b)
    var_a = local_mean(a * a) - mu_a.square()
    var_b = local_mean(b * b) - mu_b.square()
    cov_ab = local_mean(a * b) - mu_a * mu_b
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    numerator = (2 * mu_a * mu_b + c1) * (2 * cov_ab + c2)
    return numerator / ((mu_a.square() + mu_b.square() + c1) * (var_a + var_b + c2))


def _symmetric(size: int, radius: int, device: torch.device) -> torch.Tensor:
    """Indices of 0..size−1 extended by ``radius`` on each side by symmetric reflection (NumPy's "symmetric"
    padding, repeated when radius > size): the sequence is periodic with period 2·size."""
    position = torch.arange(-radius, size + radius, device=device).remainder(2 * size)
    return torch.where(position < size, position, 2 * size - 1 - position)


# ------------------------------------------------------------------------------------------- the SR protocol

# ITU-R BT.601 luma for RGB in [0, 1], as the SR papers compute it (MATLAB's rgb2ycbcr, which SRCNN, SRGAN and
# ESRGAN's evaluation code use): Y = 16 + 65.481 R + 128.553 G + 24.966 B, in [16, 235] on the 0-255 scale.
_BT601_Y = (65.481, 128.553, 24.966)


def luma_bt601(images: torch.Tensor) -> torch.Tensor:
    """The Y channel of YCbCr (ITU-R BT.601, "studio swing") of RGB images in [0, 1], divided by 255 so that it
    lies in [16/255, 235/255]: N×1×H×W float64. A 1-channel image is taken as its own luma (returned as is)."""
    images = _check_images(images, "images", "luma_bt601", min_size=1)
    if images.shape[1] == 1:
        return images
    if images.shape[1] != 3:
        raise ConfigError(f"luma_bt601: images must have 1 or 3 channels, got {images.shape[1]}")
    weights = torch.tensor(_BT601_Y, dtype=torch.float64, device=images.device).view(1, 3, 1, 1)
    return (16.0 + (images * weights).sum(dim=1, keepdim=True)) / 255.0


def _shave(images: torch.Tensor, border: int, fn: str) -> torch.Tensor:
    if isinstance(border, bool) or not isinstance(border, int) or border < 0:
        raise ConfigError(f"{fn}: border must be a whole number of pixels >= 0, got {border!r}")
    if border == 0:
        return images
    if min(images.shape[2:]) <= 2 * border:
        raise ConfigError(f"{fn}: a border of {border} leaves nothing of {images.shape[2]}×{images.shape[3]} images")
    return images[:, :, border:-border, border:-border]


def psnr_y(a: torch.Tensor, b: torch.Tensor, *, border: int = 0) -> torch.Tensor:
    """PSNR (dB) on the BT.601 Y channel (``luma_bt601``) with ``border`` pixels cropped from every side: the
    SR papers' protocol (border = the scale factor; e.g. Ledig et al. 2017 §3.2, Wang et al. 2018 §4.1).
    Data range 1 on Y/255, i.e. 255 on the usual 0-255 Y. Returns a float64 tensor (N,)."""
    a, b = _check_pair(a, b, "psnr_y", min_size=1)
    return psnr(_shave(luma_bt601(a), border, "psnr_y"), _shave(luma_bt601(b), border, "psnr_y"))


def ssim_y(a: torch.Tensor, b: torch.Tensor, *, border: int = 0) -> torch.Tensor:
    """SSIM (``ssim``: Wang et al. 2004, 11×11 Gaussian window, σ = 1.5) on the BT.601 Y channel with
    ``border`` pixels cropped from every side, as ``psnr_y``. Returns a float64 tensor (N,)."""
    a, b = _check_pair(a, b, "ssim_y", min_size=1)
    return ssim(_shave(luma_bt601(a), border, "ssim_y"), _shave(luma_bt601(b), border, "ssim_y"))


def lr_consistency(upscaled: torch.Tensor, low_res: torch.Tensor) -> torch.Tensor:
    """How well an upscaled image agrees with its input: PSNR (dB, all channels) between the antialiased
    bicubic downsampling of ``upscaled`` (Keys a = −0.5, like MATLAB's imresize) and ``low_res``. The
    "LR-PSNR" of the perception-distortion literature (e.g. Lugmayr et al. 2020, NTIRE learning the SR
    space): a sharp output that invents detail should still shrink back to what it was given. The scale
    is the size ratio, a whole number on both axes. Returns a float64 tensor (N,)."""
    upscaled = _check_images(upscaled, "upscaled", "lr_consistency", min_size=1)
    low_res = _check_images(low_res, "low_res", "lr_consistency", min_size=1)
    (n, c, h, w), (n2, c2, lh, lw) = upscaled.shape, low_res.shape
    if (n, c) != (n2, c2) or h % lh or w % lw or h // lh != w // lw:
        raise ConfigError(f"lr_consistency: upscaled {tuple(upscaled.shape)} is not a whole multiple of low_res "
                          f"{tuple(low_res.shape)} on both axes")
    down = F.interpolate(upscaled, size=(lh, lw), mode="bicubic", antialias=True, align_corners=False)
    return psnr(down.clamp(0.0, 1.0), low_res)


# ------------------------------------------------------------------------------------------- latent paths


def latent_smoothness(path_features: torch.Tensor) -> dict[str, float]:
    """How evenly and how directly interpolation paths move through a feature space.

    ``path_features``: T×F (one path: the features of T frames from one endpoint to the other, e.g. a
    classifier's features of decoded lerp/slerp frames) or N×T×F (N paths). With step lengths
    s_t = ‖f_{t+1} − f_t‖ (t = 1..T−1) of each path:

    - "evenness" = mean over paths of std(s) / mean(s) (coefficient of variation, population std):
      0 when every step moves the same distance; large when the path sits still and then jumps, as a
      generator does when interpolating between modes it has learned as separate islands.
    - "straightness" = mean over paths of ‖f_T − f_1‖ / Σ_t s_t, in [0, 1]: 1 for a straight line,
      lower when the path detours (0 only for a closed loop).

    This is a whole-path companion to StyleGAN's perceptual path length (Karras et al. 2019, "A Style-Based
    Generator Architecture for GANs", §3.2), which averages the distance of small ε-steps along interpolations:
    PPL measures how far steps go, these measure how uniformly and how directly. A path whose frames are all
    identical has no steps to compare and gives NaN (and so does the mean over paths). Needs T ≥ 3.
    """
    fn = "latent_smoothness"
    paths = torch.as_tensor(path_features).detach()
    shape = tuple(paths.shape)
    if paths.dim() == 2:
        paths = paths.unsqueeze(0)
    if paths.dim() != 3:
        raise ConfigError(f"{fn}: path_features must be a T×F or N×T×F tensor, got shape {shape}")
    if paths.shape[1] < 3 or paths.shape[0] == 0 or paths.shape[2] == 0:
        raise ConfigError(f"{fn}: path_features needs T >= 3 frames per path (and N, F >= 1), "
                          f"got shape {shape}")
    paths = _as_float64(paths, "path_features", fn)
    steps = (paths[:, 1:] - paths[:, :-1]).norm(dim=2)  # N×(T−1)
    total = steps.sum(dim=1)
    evenness = steps.std(dim=1, correction=0) / steps.mean(dim=1)  # 0/0 = NaN for a path that never moves
    straightness = (paths[:, -1] - paths[:, 0]).norm(dim=1) / total
    return {"evenness": float(evenness.mean()), "straightness": float(straightness.mean())}


# ------------------------------------------------------------------------------------------- input checks


def _check_images(value: Any, name: str, fn: str, *, min_size: int) -> torch.Tensor:
    images = torch.as_tensor(value).detach()
    if images.dim() != 4:
        raise ConfigError(f"{fn}: {name} must be a 4-D tensor N×C×H×W, got shape {tuple(images.shape)}")
    if not images.is_floating_point():
        raise ConfigError(f"{fn}: {name} must be floats in [0, 1], got dtype {images.dtype} (divide uint8 by 255)")
    n, c, h, w = images.shape
    if n == 0 or c == 0 or h < min_size or w < min_size:
        raise ConfigError(f"{fn}: {name} needs N, C >= 1 and H, W >= {min_size}, got shape {tuple(images.shape)}")
    return _as_float64(images, name, fn)


def _check_pair(a: Any, b: Any, fn: str, *, min_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    a = _check_images(a, "a", fn, min_size=min_size)
    b = _check_images(b, "b", fn, min_size=min_size)
    if a.shape != b.shape:
        raise ConfigError(f"{fn}: a and b must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    return a, b


def _check_positive(value: Any, name: str, fn: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if isinstance(value, bool) or not math.isfinite(number) or number <= 0:
        raise ConfigError(f"{fn}: {name} must be a finite number > 0, got {value!r}")
    return number
