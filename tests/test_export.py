"""`genlab export`: every family's image-making part as ONNX and TorchScript, checked against eager PyTorch;
the eval-mode guard; the metadata contract; int8; and examples/onnx_sample.py in a process without torch."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import genlab
from genlab.cli.main import main
from genlab.errors import ConfigError
from genlab.models.autoencoder import Autoencoder, AutoencoderConfig
from genlab.models.diffusion import Diffusion, DiffusionConfig
from genlab.models.sr import SR, SRConfig
from genlab.models.translation import CycleGAN, CycleGANConfig, Pix2Pix, Pix2PixConfig
from genlab.tools.export import PARITY_ATOL, export_model, read_metadata, select_part

onnxruntime = pytest.importorskip("onnxruntime", reason="the export extra (onnx, onnxruntime, onnxscript) is not installed")

REPOSITORY = Path(__file__).resolve().parents[1]
TINY_AE = AutoencoderConfig(image_shape=(1, 16, 16), latent_channels=2, channels=(4, 8), blocks=0)


def models() -> dict[str, tuple[object, str | None]]:
    """name → (a small untrained model with non-trivial batch-norm statistics, part)."""
    torch.manual_seed(0)
    ae = Autoencoder(TINY_AE)
    return {
        "gan": (genlab.GAN(genlab.GANConfig(image_shape=(1, 28, 28), latent_dim=8, g_width=8, d_width=8)), None),
        "cgan": (genlab.GAN(genlab.GANConfig(image_shape=(1, 28, 28), latent_dim=8, g_width=8, d_width=8, num_classes=4)), None),
        "cvae decoder": (genlab.VAE(genlab.VAEConfig(image_shape=(1, 16, 16), latent_dim=4, channels=(4, 8), num_classes=3)), None),
        "vae encoder": (genlab.VAE(genlab.VAEConfig(image_shape=(1, 16, 16), latent_dim=4, channels=(4, 8))), "encoder"),
        "sr": (SR(SRConfig(image_shape=(1, 8, 8), scale=2, channels=4, blocks=1)), None),
        "pix2pix": (Pix2Pix(Pix2PixConfig(image_shape=(1, 16, 16), g_width=4, d_width=4)), None),
        "autoencoder": (ae, None),
        "latent diffusion": (Diffusion.from_first_stage(ae, scale_factor=1.5, channels=(8, 16), blocks=1, timesteps=50), None),
    }


def randomize_batch_norm(model) -> None:
    """Running statistics far from the batch's own, so that a train-mode export would differ visibly."""
    generator = torch.Generator().manual_seed(1)
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm) and module.running_mean is not None:
            module.running_mean.copy_(torch.randn(module.running_mean.shape, generator=generator) * 0.5)
            module.running_var.copy_(torch.rand(module.running_var.shape, generator=generator) + 0.5)


def inputs_for(part, n: int) -> list[np.ndarray]:
    generator, arrays = torch.Generator().manual_seed(n), []
    for spec, example in zip(part.inputs, part.example, strict=True):
        if spec["dtype"] == "int64":
            arrays.append((torch.arange(n) % spec["classes"]).numpy())
        else:
            arrays.append(torch.rand((n, *example.shape[1:]), generator=generator).numpy() * 2 - (spec["name"] == "z"))
    return arrays


@pytest.mark.parametrize("name", ["gan", "cgan", "cvae decoder", "vae encoder", "sr", "pix2pix", "autoencoder",
                                  "latent diffusion"])
def test_onnx_and_torchscript_match_eager_at_batch_1_and_7(tmp_path, name):
    """The export of each family's part gives eager PyTorch's outputs (fp32, within PARITY_ATOL; the module's
    comment says why 1e-4) at batch sizes other than the example's 2: the batch axis is dynamic."""
    model, part_name = models()[name]
    randomize_batch_norm(model)
    part = select_part(model, part_name)
    onnx_written = export_model(model, tmp_path / "m.onnx", part=part_name)
    script_written = export_model(model, tmp_path / "m.pt", format="torchscript", part=part_name)
    assert onnx_written["max_abs_diff"] <= PARITY_ATOL and script_written["max_abs_diff"] <= PARITY_ATOL
    session = onnxruntime.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    script = torch.jit.load(str(tmp_path / "m.pt"))
    assert [i.name for i in session.get_inputs()] == [s["name"] for s in part.inputs]
    for n in (1, 7):
        arrays = inputs_for(part, n)
        with torch.no_grad():
            expected = part.module(*map(torch.from_numpy, arrays))
            scripted = script(*map(torch.from_numpy, arrays))
        got = torch.from_numpy(session.run(None, {s["name"]: a for s, a in zip(part.inputs, arrays, strict=True)})[0])
        assert got.shape == expected.shape and got.shape[0] == n
        assert (got - expected).abs().max() <= PARITY_ATOL, (name, n)
        assert (scripted - expected).abs().max() <= PARITY_ATOL, (name, n)
        if part.outputs[0]["name"] == "images":
            assert expected.min() >= 0 and expected.max() <= 1


def test_the_export_is_the_eval_mode_network_whatever_mode_the_model_is_in(tmp_path):
    """A DCGAN generator with batch norm, left in train mode: its export uses the running statistics (what
    model.sample gives), not the batch's statistics (what a train-mode export would bake in)."""
    gan = genlab.GAN(genlab.GANConfig(image_shape=(1, 28, 28), latent_dim=8, g_width=8, d_width=8))
    randomize_batch_norm(gan)
    gan.train()
    export_model(gan, tmp_path / "g.onnx")
    assert gan.training  # the caller's model is untouched
    z = torch.randn(5, 8, generator=torch.Generator().manual_seed(3))
    session = onnxruntime.InferenceSession(str(tmp_path / "g.onnx"), providers=["CPUExecutionProvider"])
    exported = torch.from_numpy(session.run(None, {"z": z.numpy()})[0])
    with torch.no_grad():
        eval_mode = gan.eval().generate(z)
        train_mode = gan.train().generate(z)  # normalised by this batch's own statistics
    assert (exported - eval_mode).abs().max() <= PARITY_ATOL
    # Untrained, G's tanh output stays near 0, so the two modes differ by ~5e-3 here: still 50× the tolerance.
    assert (exported - train_mode).abs().max() > 10 * PARITY_ATOL


def test_metadata_holds_the_contract_config_version_and_mode(tmp_path):
    gan = models()["cgan"][0]
    export_model(gan, tmp_path / "g.onnx", run_config={"model": {"latent_dim": 8}, "train": {"ema_decay": 0.99}})
    export_model(gan, tmp_path / "g.pt", format="torchscript")
    for path in (tmp_path / "g.onnx", tmp_path / "g.pt"):
        meta = read_metadata(path)
        contract = json.loads(meta["genlab.contract"])
        assert contract["part"] == "generator" and meta["genlab.version"] == genlab.__version__
        assert [s["name"] for s in contract["inputs"]] == ["z", "labels"] and contract["inputs"][1]["classes"] == 4
        assert contract["outputs"][0]["shape"] == ["N", 1, 28, 28] and "eval" in meta["genlab.mode"]
        assert "truncat" in meta["genlab.truncation"]
    onnx_meta = read_metadata(tmp_path / "g.onnx")
    assert onnx_meta["genlab.weights"] == "EMA" and json.loads(onnx_meta["genlab.config"])["model"]["latent_dim"] == 8
    assert onnx_meta["genlab.opset"] == "18"


def test_unsupported_parts_and_models_are_clear_errors(tmp_path):
    gan = models()["gan"][0]
    with pytest.raises(ConfigError, match="a gan model exports generator, not 'decoder'"):
        export_model(gan, tmp_path / "x.onnx", part="decoder")
    with pytest.raises(ConfigError, match="no single-pass part"):
        export_model(Diffusion(DiffusionConfig(image_shape=(1, 16, 16), channels=(8, 16), blocks=1)), tmp_path / "x.onnx")
    with pytest.raises(ConfigError, match="--format must be onnx or torchscript"):
        export_model(gan, tmp_path / "x.onnx", format="tflite")
    with pytest.raises(ConfigError, match="only for --format onnx"):
        export_model(gan, tmp_path / "x.pt", format="torchscript", quantize="int8")
    with pytest.raises(ConfigError, match="direction must be 'a2b'"):
        export_model(Pix2Pix(Pix2PixConfig(image_shape=(1, 16, 16), g_width=4, d_width=4)), tmp_path / "x.onnx", direction="b2a")
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_cyclegan_exports_both_directions(tmp_path):
    model = CycleGAN(CycleGANConfig(image_shape=(1, 16, 16), source_channels=3, g_width=4, d_width=4, g_blocks=1,
                                    identity_weight=0.0))
    a2b = export_model(model, tmp_path / "a2b.onnx")
    b2a = export_model(model, tmp_path / "b2a.onnx", direction="b2a")
    assert a2b["contract"]["inputs"][0]["shape"] == ["N", 3, 16, 16] and a2b["contract"]["outputs"][0]["shape"] == ["N", 1, 16, 16]
    assert b2a["contract"]["inputs"][0]["shape"] == ["N", 1, 16, 16] and b2a["max_abs_diff"] <= PARITY_ATOL


def test_int8_export_is_smaller_and_close(tmp_path):
    gan = genlab.GAN(genlab.GANConfig(image_shape=(1, 28, 28)))  # default widths: int8 weights matter
    export_model(gan, tmp_path / "fp32.onnx")
    written = export_model(gan, tmp_path / "int8.onnx", quantize="int8")
    assert written["max_abs_diff"] is None and "int8" in read_metadata(tmp_path / "int8.onnx")["genlab.quantize"]
    assert (tmp_path / "int8.onnx").stat().st_size < 0.5 * (tmp_path / "fp32.onnx").stat().st_size
    z = np.random.default_rng(0).standard_normal((8, 100)).astype(np.float32)
    run = lambda path: onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"z": z})[0]  # noqa: E731
    difference = np.abs(run(tmp_path / "int8.onnx") - run(tmp_path / "fp32.onnx"))
    # Quantised weights move each pixel a little (images in [0, 1]); a broken graph would move them by ~0.5.
    assert difference.mean() < 0.05 and difference.max() < 0.5


@pytest.fixture(scope="module")
def cgan_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "cgan"
    data = genlab.load_dataset("fashion-mnist-mini", split="train")
    model = genlab.GAN(genlab.GANConfig(num_classes=10, latent_dim=8, g_width=8, d_width=8))
    genlab.train(model, data, genlab.TrainConfig(max_steps=3, batch_size=16, ema_decay=0.9, out_dir=str(out),
                                                 progress=False, tensorboard=False, device="cpu"))
    return out


def test_cli_export_then_sample_without_torch_matches_genlab(tmp_path, cgan_run, capsys):
    """`genlab export` writes the EMA generator; examples/onnx_sample.py, in a Python where `import torch` fails,
    turns the same z and labels into the images genlab's own generate makes."""
    assert main(["export", str(cgan_run), "-o", str(tmp_path / "cgan.onnx")]) == 0
    said = capsys.readouterr().out
    assert "onnx generator (z N×8 float32, labels N int64 → images N×1×28×28)" in said and "max |export − PyTorch|" in said
    assert read_metadata(tmp_path / "cgan.onnx")["genlab.weights"] == "EMA"
    z = np.random.default_rng(5).standard_normal((6, 8)).astype(np.float32)
    np.save(tmp_path / "z.npy", z)
    script = REPOSITORY / "examples" / "onnx_sample.py"
    argv = [str(script), str(tmp_path / "cgan.onnx"), "--z", str(tmp_path / "z.npy"), "--labels", "1,2,3,4,5,6",
            "-o", str(tmp_path / "grid.png"), "--save-array", str(tmp_path / "out.npy")]
    no_torch = ("import runpy, sys; sys.modules['torch'] = None; sys.modules['genlab'] = None; "
                f"sys.argv = {argv!r}; runpy.run_path(sys.argv[0], run_name='__main__')")
    result = subprocess.run([sys.executable, "-c", no_torch], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "6 image(s) of 1×28×28" in result.stdout and (tmp_path / "grid.png").is_file()
    model = genlab.load(cgan_run)
    with torch.no_grad():
        expected = model.generate(torch.from_numpy(z), torch.tensor([1, 2, 3, 4, 5, 6])).numpy()
    assert np.abs(np.load(tmp_path / "out.npy") - expected).max() <= PARITY_ATOL
    # A torch-free process really cannot import torch (the check above would otherwise prove little).
    probe = subprocess.run([sys.executable, "-c", "import sys; sys.modules['torch'] = None; import torch"],
                           capture_output=True, text=True, timeout=60)
    assert (probe.returncode != 0 and "ModuleNotFoundError" in probe.stderr) or "ImportError" in probe.stderr


def test_cli_export_errors_are_one_line(tmp_path, cgan_run, capsys):
    assert main(["export", str(cgan_run), "--part", "encoder", "-o", str(tmp_path / "x.onnx")]) == 2
    assert "a gan model exports generator, not 'encoder'" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "nowhere"), "-o", str(tmp_path / "x.onnx")]) == 2
    assert "nowhere" in capsys.readouterr().err
