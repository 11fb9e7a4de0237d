"""Export the part of a trained model that makes images to ONNX or TorchScript, for single-pass use outside genlab.

A *part* is one network with a fixed contract (named inputs and outputs, float images in [0, 1]):

========================  =============  ==========================================================================
model kind                part           inputs → output
========================  =============  ==========================================================================
vae                       decoder*       ``z`` N×d (+ ``labels`` N int64 when conditional) → ``images`` N×C×H×W
vae                       encoder        ``images`` N×C×H×W (+ ``labels``) → ``z`` N×d, the posterior mean μ(x)
gan                       generator*     ``z`` N×d (+ ``labels`` N int64 when conditional) → ``images``
sr                        upscaler*      ``low_res`` N×C×h×w (any h, w) → ``images`` N×C×(s·h)×(s·w)
pix2pix, cyclegan         translator*    ``images`` N×C×H×W → ``translated`` (``direction`` a2b, or b2a for CycleGAN)
autoencoder               decoder*       ``latents`` N×c×h×w → ``images`` N×C×(f·h)×(f·w)
autoencoder               encoder        ``images`` → ``latents``, the posterior mean
diffusion (latent space)  decoder*       the first stage's decoder (latents in the autoencoder's own scale)
========================  =============  ==========================================================================

(* the default part.) Every export is taken from a copy of the model in eval mode (batch norm uses its
running statistics, dropout is off), with the weights the run saved (its EMA weights when it kept an EMA), a
dynamic batch axis, and the contract, the run's config and genlab's version stored in the file (ONNX metadata
properties; a ``genlab.json`` extra file in TorchScript). Truncation stays on the caller's side: draw z from
N(0, I) truncated to [−τ, τ] before calling. Pixel-space diffusion has no single-pass part: its sampler calls the
U-Net once per step.

After writing, the ONNX file is run with onnxruntime on the export's example batch and compared with eager
PyTorch (fp32; int8 files, quantised statically with calibration inputs drawn as the contract says, are not
compared: their cost is measured as a judge-FID delta in benchmarks/export_latency.py).
"""
from __future__ import annotations

import contextlib
import copy
import inspect
import io
import json
import logging
import os
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from genlab.config import config_to_dict
from genlab.errors import ConfigError
from genlab.io.checkpoints import read_run_config
from genlab.io.files import atomic_write_bytes
from genlab.models.translation.common import from_model_range, to_model_range
from genlab.runs import load
from genlab.version import __version__

FORMATS = ("onnx", "torchscript")
QUANTIZE = ("int8",)
OPSET = 18  # the lowest opset torch's ONNX exporter implements natively since torch 2.9; onnxruntime ≥ 1.16 runs it
MODE = "eval: batch norm uses its running statistics, dropout is off"
TRUNCATION = ("truncation is the caller's: draw z from N(0, I) truncated to [-tau, tau] (genlab's truncated_normal) "
              "before calling; the exported network only maps z to images")
# fp32 parity of an export with eager PyTorch: outputs are images in [0, 1] computed by the same float32 ops in
# another order (other kernels, fused or not); rounding differences grow to ~1e-6 over a few dozen layers, so 1e-4
# flags a wrong graph (a train-mode batch norm moves outputs by ~1e-2) without failing on another CPU's kernels.
PARITY_ATOL = 1e-4


@dataclass
class Part:
    """One exportable network: ``module(*example)`` is the computation, in eval mode, on the CPU."""

    name: str
    module: nn.Module
    inputs: list[dict[str, Any]]  # name, shape (with "N" etc. for dynamic axes), dtype, doc
    outputs: list[dict[str, Any]]
    example: tuple[torch.Tensor, ...]
    dynamic: dict[str, dict[int, str]] = field(default_factory=dict)  # input name → {axis: axis name}

    def contract(self) -> dict[str, Any]:
        return {"part": self.name, "inputs": self.inputs, "outputs": self.outputs, "mode": MODE}


class _Function(nn.Module):
    """``forward(x)`` = ``function(x)`` over the modules in ``owner`` (so they are traced and exported)."""

    def __init__(self, owner: nn.Module, function: Callable[..., torch.Tensor]) -> None:
        super().__init__()
        self.owner, self.function = owner, function

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.function(x)


class _LabelledFunction(_Function):
    """``forward(x, labels)`` = ``function(x, labels)``: the exporters need each input named in the signature."""

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return self.function(x, labels)


def _wrap(owner: nn.Module, function: Callable[..., torch.Tensor], arity: int) -> _Function:
    return (_LabelledFunction if arity == 2 else _Function)(owner, function)


def _spec(name: str, shape: list[Any], doc: str, dtype: str = "float32") -> dict[str, Any]:
    return {"name": name, "shape": shape, "dtype": dtype, "doc": doc}


def _latent_part(name: str, owner: nn.Module, dim: int, classes: int, image_shape: tuple[int, ...],
                 function: Callable[..., torch.Tensor], z_doc: str) -> Part:
    inputs = [_spec("z", ["N", dim], z_doc)]
    example: tuple[torch.Tensor, ...] = (torch.randn(2, dim, generator=torch.Generator().manual_seed(0)),)
    dynamic = {"z": {0: "N"}}
    if classes:
        inputs.append({**_spec("labels", ["N"], f"the class of each image, 0..{classes - 1}", "int64"), "classes": classes})
        example += (torch.tensor([0, classes - 1]),)
        dynamic["labels"] = {0: "N"}
    outputs = [_spec("images", ["N", *image_shape], "float images in [0, 1]")]
    return Part(name, _wrap(owner, function, len(example)), inputs, outputs, example, dynamic)


def _vae_parts(vae: Any) -> dict[str, Callable[[], Part]]:
    c = vae.config
    image_shape = tuple(c.image_shape)

    def decoder() -> Part:
        def decode(z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
            return torch.sigmoid(vae._logits(z, labels))  # the mean of p(x|z), as VAE.decode
        return _latent_part("decoder", vae, c.latent_dim, c.num_classes, image_shape, decode, "latent codes, N(0, I) under the prior")

    def encoder() -> Part:
        def encode(images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
            return vae._posterior(images, labels).mean
        example: tuple[torch.Tensor, ...] = (torch.rand(2, *image_shape, generator=torch.Generator().manual_seed(0)),)
        inputs = [_spec("images", ["N", *image_shape], "float images in [0, 1]")]
        dynamic = {"images": {0: "N"}}
        if c.num_classes:
            inputs.append({**_spec("labels", ["N"], f"the class of each image, 0..{c.num_classes - 1}", "int64"),
                           "classes": c.num_classes})
            example += (torch.tensor([0, c.num_classes - 1]),)
            dynamic["labels"] = {0: "N"}
        return Part("encoder", _wrap(vae, encode, len(example)), inputs,
                    [_spec("z", ["N", c.latent_dim], "the posterior mean mu(x)")], example, dynamic)
    return {"decoder": decoder, "encoder": encoder}


def _gan_parts(gan: Any) -> dict[str, Callable[[], Part]]:
    c = gan.config

    def generator() -> Part:
        def generate(z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
            return gan.from_model_range(gan.generator(z, labels))
        shape = tuple(gan.image_shape)
        what = "float images in [0, 1]" if len(shape) == 3 else "points, as the model makes them"
        part = _latent_part("generator", gan, c.latent_dim, c.num_classes, shape, generate, "noise, N(0, I)")
        part.outputs[0]["doc"] = what
        return part
    return {"generator": generator}


def _image_part(name: str, owner: nn.Module, function: Callable[..., torch.Tensor], in_name: str, in_shape: tuple[int, ...],
                out_shape: list[Any], spatial: bool, size: tuple[int, int]) -> Part:
    c = in_shape[0]
    dynamic = {in_name: {0: "N", 2: "H", 3: "W"} if spatial else {0: "N"}}
    shape = ["N", c, "H", "W"] if spatial else ["N", *in_shape]
    example = (torch.rand(2, c, *size, generator=torch.Generator().manual_seed(0)),)
    return Part(name, _wrap(owner, function, 1), [_spec(in_name, shape, "float images in [0, 1]")],
                [_spec("images", out_shape, "float images in [0, 1]")], example, dynamic)


def _sr_parts(sr: Any) -> dict[str, Callable[[], Part]]:
    c, scale = sr.config.image_shape[0], sr.scale

    def upscaler() -> Part:
        return _image_part("upscaler", sr, lambda low: sr.generator(low).clamp(0.0, 1.0), "low_res", (c, 16, 16),
                           ["N", c, f"{scale}*H", f"{scale}*W"], True, (16, 24))
    return {"upscaler": upscaler}


def _translation_parts(model: Any, direction: str) -> dict[str, Callable[[], Part]]:
    def translator() -> Part:
        model.check_direction(direction)
        generator = model.generator_for(direction)
        channels = model.input_channels(direction)
        out_channels = model.config.image_shape[0] if direction == "a2b" else model.source_channels
        _, height, width = model.config.image_shape
        part = _image_part("translator", model, lambda x: from_model_range(generator(to_model_range(x))), "images",
                           (channels, height, width), ["N", out_channels, height, width], False, (height, width))
        part.inputs[0]["doc"] += f" (direction {direction})"
        part.outputs[0]["name"] = "translated"  # an ONNX graph cannot name an input and an output alike
        return part
    return {"translator": translator}


def _autoencoder_parts(ae: Any, owner: nn.Module | None = None, note: str = "") -> dict[str, Callable[[], Part]]:
    c, f = ae.config.latent_channels, ae.config.factor
    channels, height, width = ae.config.image_shape
    latent = (c, height // f, width // f)

    def decoder() -> Part:
        part = _image_part("decoder", owner or ae, ae._decode, "latents", latent,
                           ["N", channels, f"{f}*h", f"{f}*w"], True, latent[1:])
        part.inputs[0]["doc"] = "latents N×c×h×w in the autoencoder's own scale" + note
        return part

    def encoder() -> Part:
        part = _image_part("encoder", ae, lambda x: ae._moments(x)[0], "images", (channels, height, width),
                           ["N", c, "H/" + str(f), "W/" + str(f)], True, (height, width))
        part.outputs = [_spec("latents", part.outputs[0]["shape"], "the posterior mean, in the autoencoder's own scale")]
        return part
    return {"decoder": decoder, "encoder": encoder}


def parts_of(model: Any, direction: str = "a2b") -> dict[str, Callable[[], Part]]:
    """The exportable parts of ``model`` (name → builder); the first is the default."""
    kind = getattr(model, "kind", type(model).__name__)
    if kind == "vae":
        return _vae_parts(model)
    if kind == "gan":
        return _gan_parts(model)
    if kind == "sr":
        return _sr_parts(model)
    if kind in ("pix2pix", "cyclegan"):
        return _translation_parts(model, direction)
    if kind == "autoencoder":
        return _autoencoder_parts(model)
    if kind == "diffusion":
        if model.first_stage is None:
            raise ConfigError("export: a pixel-space diffusion model has no single-pass part (its sampler calls the U-Net "
                              "once per denoising step); latent diffusion exports its first stage's decoder")
        note = f"; the diffusion samples x0 in a scale {model.config.scale_factor:.4g} times larger: divide by it first"
        return _autoencoder_parts(model.first_stage, model, note)
    raise ConfigError(f"export: a {kind} model has no exportable part (vae, gan, sr, pix2pix, cyclegan, autoencoder and "
                      "latent diffusion runs do)")


def select_part(model: Any, part: str | None = None, direction: str = "a2b") -> Part:
    """The ``part`` of an eval-mode copy of ``model`` (its default part when None), or a ConfigError naming the choices."""
    model = copy.deepcopy(model).cpu().float().eval().requires_grad_(False)
    parts = parts_of(model, direction)
    name = part or next(iter(parts))
    if name not in parts:
        raise ConfigError(f"--part: a {model.kind} model exports {' or '.join(parts)}, not {name!r}")
    return parts[name]()


# ----- writing -----
def export(run_dir: str | os.PathLike, out: str | os.PathLike, *, format: str = "onnx", part: str | None = None,
           quantize: str | None = None, direction: str = "a2b", opset: int = OPSET) -> dict[str, Any]:
    """Export the ``part`` of the run in ``run_dir`` to ``out``; returns what was written (path, part, contract,
    parity with eager PyTorch). See the module's docstring for the parts and the contract."""
    config = read_run_config(run_dir)
    return export_model(load(run_dir), out, format=format, part=part, quantize=quantize, direction=direction,
                        opset=opset, run_config=config)


def export_model(model: Any, out: str | os.PathLike, *, format: str = "onnx", part: str | None = None,
                 quantize: str | None = None, direction: str = "a2b", opset: int = OPSET,
                 run_config: dict[str, Any] | None = None) -> dict[str, Any]:
    """``export`` for a model in memory (``run_config``: what to store as its config; default the model's own)."""
    if format not in FORMATS:
        raise ConfigError(f"--format must be {' or '.join(FORMATS)}, got {format!r}")
    if quantize is not None and (quantize not in QUANTIZE or format != "onnx"):
        raise ConfigError(f"--quantize: only int8, and only for --format onnx (onnxruntime's static quantisation), got "
                          f"{quantize!r} with {format}")
    if not 13 <= opset <= 23:
        raise ConfigError(f"--opset must be between 13 and 23, got {opset}")
    chosen = select_part(model, part, direction)
    train = (run_config or {}).get("train") or {}
    metadata = {"genlab.version": __version__, "genlab.kind": model.kind, "genlab.part": chosen.name, "genlab.mode": MODE,
                "genlab.contract": json.dumps(chosen.contract()),
                "genlab.weights": "EMA" if train.get("ema_decay") else "as trained (the run kept no EMA)",
                "genlab.config": json.dumps(run_config if run_config is not None else _model_config(model)),
                "genlab.torch": torch.__version__}
    if chosen.name in ("generator", "decoder") and any(spec["name"] == "z" for spec in chosen.inputs):
        metadata["genlab.truncation"] = TRUNCATION
    out = Path(out)
    if format == "torchscript":
        data = _torchscript_bytes(chosen, metadata)
        atomic_write_bytes(out, data)
        return {"path": str(out), "format": format, "part": chosen.name, "contract": chosen.contract(),
                "max_abs_diff": _torchscript_parity(data, chosen)}
    metadata["genlab.opset"] = str(opset)
    proto = _onnx_model(chosen, opset)
    if quantize:
        metadata["genlab.quantize"] = ("int8 (onnxruntime static QDQ quantisation: int8 weights per channel, uint8 "
                                       "activations calibrated on 128 inputs drawn as the contract says)")
        proto = _quantized(proto, chosen)
    del proto.metadata_props[:]
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.doc_string = f"genlab {model.kind} {chosen.name}: " + "; ".join(
        f"{s['name']} {'×'.join(map(str, s['shape']))} {s['dtype']}" for s in chosen.inputs) + " → " + "; ".join(
        f"{s['name']} {'×'.join(map(str, s['shape']))}" for s in chosen.outputs)
    data = proto.SerializeToString()
    atomic_write_bytes(out, data)
    difference = None if quantize else onnx_parity(data, chosen)
    return {"path": str(out), "format": format, "part": chosen.name, "contract": chosen.contract(), "opset": opset,
            "quantize": quantize, "max_abs_diff": difference}


def _model_config(model: Any) -> dict[str, Any]:
    return {"model": config_to_dict(model.config), "kind": model.kind}


def require(module: str, what: str) -> Any:
    """Import ``module`` or raise a ConfigError saying how to install it."""
    try:
        return __import__(module)
    except ImportError as error:
        raise ConfigError(f"{what} needs the {module} package: pip install 'genlab[export]' "
                          "(onnx, onnxruntime and onnxscript)") from error


@contextlib.contextmanager
def _quiet() -> Any:
    """The exporters print progress and warn about deprecated APIs and optional packages: keep the CLI readable."""
    loggers = [logging.getLogger("torch.onnx"), logging.getLogger()]  # onnxruntime's quantiser logs on the root logger
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _onnx_model(part: Part, opset: int) -> Any:
    onnx = require("onnx", "ONNX export")
    names = [spec["name"] for spec in part.inputs]
    with tempfile.TemporaryDirectory(prefix="genlab-export-") as folder, _quiet():
        path = Path(folder) / "model.onnx"
        options: dict[str, Any] = {"input_names": names, "output_names": [s["name"] for s in part.outputs],
                                   "opset_version": opset}
        if "dynamo" in inspect.signature(torch.onnx.export).parameters:  # torch ≥ 2.5: the torch.export-based exporter
            require("onnxscript", "ONNX export")
            dims = {axis: torch.export.Dim(axis, min=1) for spec in part.dynamic.values() for axis in spec.values()}
            shapes = tuple({i: dims[a] for i, a in part.dynamic.get(name, {}).items()} or None for name in names)
            torch.onnx.export(part.module, part.example, str(path), dynamic_shapes=shapes, dynamo=True, **options)
        else:  # torch 2.3-2.4: the TorchScript-based exporter
            axes = {name: dict(spec) for name, spec in part.dynamic.items()}
            axes.update({s["name"]: {0: "N"} for s in part.outputs})
            torch.onnx.export(part.module, part.example, str(path), dynamic_axes=axes, **options)
        return onnx.load(str(path), load_external_data=True)


def contract_inputs(part: Part, n: int, *, seed: int = 0, size: tuple[int, int] | None = None) -> list[torch.Tensor]:
    """A batch of ``n`` inputs drawn as the part's contract says: z ~ N(0, I), labels 0..K−1 in turn, images as
    uniform noise at the example's size (or ``size``): for int8 calibration and for timing."""
    generator, tensors = torch.Generator().manual_seed(seed), []
    for spec, example in zip(part.inputs, part.example, strict=True):
        if spec["dtype"] == "int64":
            tensors.append(torch.arange(n) % spec["classes"])
        elif spec["name"] == "z":
            tensors.append(torch.randn((n, *example.shape[1:]), generator=generator))
        else:
            tensors.append(torch.rand((n, example.shape[1], *(size or example.shape[2:])), generator=generator))
    return tensors


def calibration_inputs(part: Part, batches: int = 8, size: int = 16) -> list[dict[str, Any]]:
    """``batches`` feeds of ``size`` contract inputs each (uniform noise for image inputs: real images would
    calibrate an upscaler or translator better)."""
    names = [spec["name"] for spec in part.inputs]
    return [{name: tensor.numpy() for name, tensor in zip(names, contract_inputs(part, size, seed=i), strict=True)}
            for i in range(batches)]


def _quantized(proto: Any, part: Part) -> Any:
    """Static int8 quantisation (onnxruntime, QDQ format): weights int8 per output channel, activations uint8 with
    ranges calibrated on ``calibration_inputs``. Dynamic quantisation would leave transposed convolutions, most of
    a DCGAN generator, in fp32."""
    onnx = require("onnx", "int8 quantisation")
    require("onnxruntime", "int8 quantisation")
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.feeds = iter(calibration_inputs(part))

        def get_next(self) -> dict[str, Any] | None:
            return next(self.feeds, None)

    with tempfile.TemporaryDirectory(prefix="genlab-int8-") as folder, _quiet():
        source, target = Path(folder) / "fp32.onnx", Path(folder) / "int8.onnx"
        source.write_bytes(proto.SerializeToString())
        quantize_static(str(source), str(target), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8)
        return onnx.load(str(target))


def onnx_parity(data: bytes, part: Part) -> float | None:
    """max |onnxruntime − eager| on the part's example batch; raises when over PARITY_ATOL (None without onnxruntime)."""
    try:
        import onnxruntime
    except ImportError:
        return None
    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    feeds = {spec["name"]: tensor.numpy() for spec, tensor in zip(part.inputs, part.example, strict=True)}
    got = torch.from_numpy(session.run(None, feeds)[0])
    return _checked(got, part, "ONNX")


def _torchscript_bytes(part: Part, metadata: dict[str, str]) -> bytes:
    with _quiet(), torch.no_grad():
        traced = torch.jit.trace(part.module, part.example, check_trace=False)
        buffer = io.BytesIO()
        torch.jit.save(traced, buffer, _extra_files={"genlab.json": json.dumps(metadata)})
    return buffer.getvalue()


def _torchscript_parity(data: bytes, part: Part) -> float:
    with _quiet(), torch.no_grad():
        module = torch.jit.load(io.BytesIO(data))
        return _checked(module(*part.example), part, "TorchScript")


def _checked(got: torch.Tensor, part: Part, what: str) -> float:
    with torch.no_grad():
        expected = part.module(*part.example)
    difference = float((got.float() - expected).abs().max())
    if not difference <= PARITY_ATOL:
        raise ConfigError(f"export: the {what} {part.name} differs from PyTorch by {difference:.3g} (> {PARITY_ATOL}) on "
                          "the example batch; please report this with the run's config.json")
    return difference


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The genlab.* metadata of an exported file (ONNX properties or TorchScript's genlab.json)."""
    path = Path(path)
    if path.suffix == ".onnx":
        onnx = require("onnx", "reading ONNX metadata")
        return {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    files = {"genlab.json": ""}
    torch.jit.load(str(path), _extra_files=files)
    return json.loads(files["genlab.json"])
