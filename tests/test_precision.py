"""precision="auto": which precision it picks on which hardware (mocked CPU and GPU capabilities), what a
run records, and that losses stay fp32 under bf16 autocast while the networks' matrix products do not."""
from __future__ import annotations

import json

import pytest
import torch
from conftest import make_blobs

from genlab.config import TrainConfig
from genlab.models.gan.model import GAN, GANConfig
from genlab.models.sr.model import SR, SRConfig
from genlab.models.vae import VAE, VAEConfig
from genlab.training import train
from genlab.training.precision import Precision, choose_precision, fp32_outputs, native_bf16

CPU = torch.device("cpu")


@pytest.fixture
def fake_cpu(monkeypatch):
    """Make torch report a CPU with the given bf16 units, ATen capability and oneDNN ISA limit."""

    def install(*, amx=False, avx512_bf16=False, capability="AVX512", isa=None):
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16, raising=False)
        monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
        monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
        if isa is None:
            monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
        else:
            monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", isa)

    return install


@pytest.mark.parametrize(("cpu", "expected", "reason"), [
    (dict(amx=True, avx512_bf16=True), "bf16", "AMX and AVX-512 BF16"),
    (dict(avx512_bf16=True), "bf16", "AVX-512 BF16"),
    (dict(amx=True, capability="AMX"), "bf16", "AMX"),
    (dict(capability="AVX2"), "fp32", "no bf16 units"),  # AVX2-only: bf16 emulated, measured 12-20x slower
    (dict(capability="AVX512"), "fp32", "no bf16 units"),  # AVX-512 without BF16
    (dict(avx512_bf16=True, capability="DEFAULT"), "fp32", "ATEN_CPU_CAPABILITY"),
    (dict(avx512_bf16=True, isa="SSE41"), "fp32", "ONEDNN_MAX_CPU_ISA"),
    (dict(avx512_bf16=True, isa="avx512_core_bf16"), "bf16", "AVX-512 BF16"),
])
def test_auto_picks_bf16_only_where_the_cpu_has_native_bf16(fake_cpu, cpu, expected, reason):
    fake_cpu(**cpu)
    chosen, why = choose_precision(CPU)
    assert chosen == expected and reason in why
    assert Precision("auto", CPU).dtype == (torch.bfloat16 if expected == "bf16" else None)


def test_a_torch_without_the_probes_means_fp32(monkeypatch):
    monkeypatch.delattr(torch.cpu, "_is_amx_tile_supported", raising=False)
    monkeypatch.delattr(torch.cpu, "_is_avx512_bf16_supported", raising=False)
    assert choose_precision(CPU)[0] == "fp32"


@pytest.mark.parametrize(("supported", "expected"), [(True, "bf16"), (False, "fp32")])
def test_auto_on_cuda_follows_the_gpus_bf16_support(monkeypatch, supported, expected):
    seen = {}

    def is_bf16_supported(including_emulation=True):
        seen["emulation"] = including_emulation
        return supported

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", is_bf16_supported)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Some GPU")
    assert native_bf16(torch.device("cuda"))[0] is supported
    assert choose_precision(torch.device("cuda"))[0] == expected
    assert seen["emulation"] is False  # emulated bf16 is not a speed-up


def _run_config(tmp_path, name, **overrides):
    values = dict(epochs=1, batch_size=16, out_dir=str(tmp_path / name), device="cpu", progress=False,
                  tensorboard=False, plots=False, num_sample_images=0, max_steps=2)
    return TrainConfig(**{**values, **overrides})


@pytest.mark.parametrize(("cpu", "expected"), [(dict(avx512_bf16=True), "bf16"), (dict(capability="AVX2"), "fp32")])
def test_a_run_records_and_prints_what_auto_chose(tmp_path, fake_cpu, capsys, cpu, expected):
    fake_cpu(**cpu)
    train(VAE(VAEConfig(image_shape=(1, 16, 16), channels=(4, 8), latent_dim=2)), make_blobs(32), _run_config(tmp_path, "run"))
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["train"]["precision"] == expected
    assert f"precision: {expected} (auto: " in capsys.readouterr().err


def test_resume_keeps_the_runs_precision_on_another_cpu(tmp_path, fake_cpu):
    fake_cpu(avx512_bf16=True)
    data = make_blobs(32)
    vae = VAEConfig(image_shape=(1, 16, 16), channels=(4, 8), latent_dim=2)
    train(VAE(vae), data, _run_config(tmp_path, "run"))
    fake_cpu(capability="AVX2")  # the same run, continued on a machine where auto would pick fp32
    train(VAE(vae), data, _run_config(tmp_path, "run", max_steps=4), resume=True)
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["train"]["precision"] == "bf16"


def _models():
    shape = (1, 16, 16)
    return {
        "vae": (VAE(VAEConfig(image_shape=shape, channels=(4, 8), latent_dim=2)), make_blobs(16)),
        "gan": (GAN(GANConfig(image_shape=(1, 28, 28), num_classes=4, g_width=8, d_width=8, latent_dim=8)),
                make_blobs(16, size=28)),
        "sr": (SR(SRConfig(image_shape=(1, 28, 28), variant="srgan", channels=8, blocks=1)), make_blobs(16, size=28)),
    }


@pytest.mark.parametrize("kind", ["vae", "gan", "sr"])
def test_losses_are_fp32_under_bf16_autocast_while_convolutions_run_in_bf16(kind):
    model, data = _models()[kind]
    model.train()
    precision = Precision("bf16", CPU)
    conv_dtypes = []
    first_conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.ConvTranspose2d))
    first_conv.register_forward_hook(lambda module, inputs, output: conv_dtypes.append(output.dtype))
    x, labels = _as_batch(data)
    with fp32_outputs(model, "bf16"):
        for phase in model.training_phases():
            with precision.autocast():
                losses = phase.loss(x, labels)
            for name, value in losses.items():
                assert value.dtype == torch.float32, f"{kind} {phase.name}: {name} is {value.dtype}"
            losses["loss"].backward()
    assert conv_dtypes and set(conv_dtypes) == {torch.bfloat16}  # autocast was on: the products ran in bf16
    with fp32_outputs(model, "fp32"):  # fp32 runs get no hooks
        assert all(not child._forward_hooks for child in model.children())


def test_without_the_fp32_outputs_a_bf16_network_output_would_reach_the_loss():
    model, _ = _models()["vae"]
    with Precision("bf16", CPU).autocast():
        assert model.decoder_logits(torch.zeros(2, 2)).dtype == torch.bfloat16  # what fp32_outputs exists to undo
        with fp32_outputs(model, "bf16"):
            assert model.decoder_logits(torch.zeros(2, 2)).dtype == torch.float32
    assert not model.decoder._forward_hooks  # removed on the way out


def _as_batch(data):
    """A tiny dataset as one float batch in [0, 1] and its labels."""
    return data.images.float() / 255.0, data.labels
