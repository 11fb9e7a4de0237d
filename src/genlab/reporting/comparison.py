"""``genlab.compare``: the classic VAE-vs-GAN property table, every row measured for every run.

    genlab.compare(["runs/vae", "runs/gan"], genlab.load_dataset("fashion-mnist", split="test"), "report/")

writes ``report.md``, a self-contained ``report.html`` (pictures embedded as data URIs) and
``results.json`` to ``out_dir``, plus the pictures in ``out_dir/images/``. Each row of the table is
a measurement, never a textbook claim:

========================  =====================================================================
output sharpness          Laplacian-energy ratio to real images; FID and KID in judge features
sample fidelity           precision and density (Naeem et al. 2020)
mode collapse             classes covered by the samples (judge), recall and coverage
latent space              evenness / straightness of slerp paths in feature space, and a strip
training stability        from metrics.csv, over the last half of training (see training_stability)
likelihood                ELBO and IWAE(k) in nats and bits/dim, or "none (implicit model)"
encoder                   reconstruction MSE / PSNR / SSIM, or "none: needs inversion"
========================  =====================================================================

The report ends with a "which one should I use" paragraph built from these numbers.
"""
from __future__ import annotations

import base64
import html
import itertools
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from genlab.data.dataset import Dataset
from genlab.errors import ConfigError, DataError
from genlab.evaluation.api import applicable_metrics, evaluate, parse_metrics
from genlab.io.files import atomic_write
from genlab.io.images import make_grid, save_image
from genlab.io.plots import _pyplot, _save_figure, plot_metrics, read_metrics_csv
from genlab.models.judge import resolve_judge
from genlab.runs import load
from genlab.tools.latent import interpolation_path

DEFAULT_NUM_SAMPLES = 5000
PREFERRED_LOSSES = ("vae/loss", "G/loss", "D/loss")  # the headline loss of a run, in this order
GAN_PROBABILITIES = ("D/real_prob", "D/fake_prob")


# ------------------------------------------------------------------------------------ training stability


def training_stability(csv_path: str | os.PathLike) -> dict[str, Any]:
    """How steadily a run trained, from its metrics.csv, over the LAST HALF of the logged rows
    (after the initial descent, where a healthy run has settled):

    - ``cv``: coefficient of variation std/|mean| of each ``*/loss`` column (population std).
      Scale-free, so a VAE's loss in nats and a GAN's in logits can be set side by side; it
      grows with noise and with drift. Undefined (NaN) for a loss whose mean is ~0.
    - ``oscillation``: the fraction of consecutive first differences that change sign. 0 for a
      monotone curve, about 2/3 for independent noise around a level, near 1 for a see-saw.
      (Rows are means over ``log_every`` steps, so this is oscillation at that resolution.)
    - GANs: mean and std of D(x) and D(G(z)) as probabilities ("D/real_prob", "D/fake_prob"),
      and their gap mean D(x) − mean D(G(z)): 0 at the game's equilibrium (both 1/2), near 1
      when D wins outright and G's gradient vanishes.
    - ``recoveries``: divergence recoveries the loop logged in events.log.

    ``main_loss`` names the headline column ("vae/loss", else "G/loss", else "D/loss").
    """
    path = Path(csv_path)
    columns = read_metrics_csv(path)
    rows = len(next(iter(columns.values()), []))
    losses = [name for name in columns if name.endswith("/loss")]
    main = next((name for name in PREFERRED_LOSSES if name in losses), losses[0] if losses else None)
    result: dict[str, Any] = {"rows": rows, "main_loss": main, "losses": {}}
    for name in losses:
        values = _last_half(columns[name])
        result["losses"][name] = {"cv": _coefficient_of_variation(values), "oscillation": _oscillation(values),
                                  "mean": _mean(values)}
    for name in GAN_PROBABILITIES:
        if name in columns:
            values = _last_half(columns[name])
            result[name] = {"mean": _mean(values), "std": _std(values)}
    if all(name in result for name in GAN_PROBABILITIES):
        result["d_gap"] = result["D/real_prob"]["mean"] - result["D/fake_prob"]["mean"]
    events = path.parent / "events.log"
    result["recoveries"] = sum(1 for line in events.read_text().splitlines() if line.strip()) if events.is_file() else 0
    return result


def _last_half(values: list[float]) -> list[float]:
    return [v for v in values[len(values) // 2:] if math.isfinite(v)]


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def _std(values: list[float]) -> float:
    if not values:
        return math.nan
    mean = _mean(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))


def _coefficient_of_variation(values: list[float]) -> float:
    mean = _mean(values)
    return _std(values) / abs(mean) if len(values) >= 2 and abs(mean) > 1e-8 else math.nan


def _oscillation(values: list[float]) -> float:
    signs = [1 if b > a else -1 for a, b in itertools.pairwise(values) if b != a]
    if len(signs) < 2:
        return math.nan
    return sum(1 for s, t in itertools.pairwise(signs) if s != t) / (len(signs) - 1)


# ------------------------------------------------------------------------------------------------ compare


def compare(runs: Sequence[str | os.PathLike], dataset: Dataset, out_dir: str | os.PathLike, *,
            num_samples: int = DEFAULT_NUM_SAMPLES, judge: Any = None, features: str = "judge", seed: int = 0,
            metrics: Sequence[str] | str | None = None, progress: bool = True,
            log: Callable[[str], None] = print) -> dict[str, Any]:
    """Evaluate each run (``num_samples`` samples, against ``dataset``), read its training log, draw
    its pictures, and write the report to ``out_dir``. ``metrics``: names to compute where they
    apply (default: every metric that applies except ``cas``, which trains a classifier and is not
    one of the table's properties). Returns what results.json holds: per run its kind, metrics,
    stability and pictures; the table; the verdict."""
    started = time.perf_counter()
    if not runs:
        raise ConfigError("compare needs at least one run directory")
    out = Path(out_dir)
    names = _run_names([Path(run) for run in runs])
    wanted = parse_metrics(metrics)
    if features == "judge":  # load once, check once, share
        judge = resolve_judge(judge, tuple(dataset.image_shape), dataset_name=dataset.name)
    entries = []
    for name, run in zip(names, runs):
        model = load(run)
        log(f"Evaluating {name} ({model.kind.upper()}, {num_samples} samples against {dataset.name!r})")
        applicable = applicable_metrics(model, dataset)
        chosen = [m for m in applicable if m != "cas"] if wanted is None else [m for m in wanted if m in applicable]
        measured = evaluate(model, dataset, chosen, num_samples, judge=judge, features=features, seed=seed,
                            progress=progress) if chosen else {}
        csv_path = Path(run) / "metrics.csv"
        stability = training_stability(csv_path) if csv_path.is_file() else None
        entry = {"name": name, "path": str(run), "kind": model.kind, "num_classes": int(getattr(model.config, "num_classes", 0) or 0),
                 "metrics": measured, "stability": stability,
                 "pictures": _pictures(name, model, dataset, Path(run), out / "images", seed)}
        entries.append(entry)
    pictures = {"metrics": _plot_bars(entries, out / "images" / "metrics.png")}
    rows = _table(entries)
    verdict = _verdict(entries, dataset.name)
    results = {"dataset": dataset.name, "num_real": len(dataset), "num_samples": num_samples, "features": features,
               "runs": entries, "table": rows, "verdict": verdict, "pictures": pictures,
               "seconds": round(time.perf_counter() - started, 1)}
    _write(out / "results.json", json.dumps(_jsonable(results), indent=2) + "\n")
    _write(out / "report.md", _markdown(results, out))
    _write(out / "report.html", _html(results, out))
    return results


def _run_names(paths: list[Path]) -> list[str]:
    names = [path.resolve().name for path in paths]
    if len(set(names)) < len(names):  # e.g. a/run and b/run: add the parent folder
        names = [f"{path.resolve().parent.name}/{path.resolve().name}" for path in paths]
    if len(set(names)) < len(names):
        raise ConfigError(f"compare got the same run more than once: {', '.join(map(str, paths))}")
    return names


# ------------------------------------------------------------------------------------------------ pictures


@torch.no_grad()
def _pictures(name: str, model: Any, dataset: Dataset, run: Path, folder: Path, seed: int) -> dict[str, str]:
    """Samples grid, an interpolation strip (4 slerp paths of 10 frames) and training curves."""
    stem = name.replace("/", "_")
    written = {"samples": str(save_image(model.sample(64, seed=seed), folder / f"{stem}_samples.png", scale=2))}
    paths, steps = 4, 10
    generator = torch.Generator().manual_seed(seed + 1)
    model.eval()
    if hasattr(model, "encode"):  # a VAE: between the codes of real images
        index = torch.randperm(len(dataset), generator=generator)[: 2 * paths]
        codes = model.encode(dataset.float_images(index).to(model.device)).cpu()
        frames = [model.decode(interpolation_path(codes[2 * i], codes[2 * i + 1], steps).to(model.device)).cpu()
                  for i in range(paths)]
    else:  # a GAN: between random z's (a conditional one keeps one class per path)
        codes = torch.randn(2 * paths, model.config.latent_dim, generator=generator)
        frames = []
        for i in range(paths):
            labels = [i % model.config.num_classes] * steps if getattr(model.config, "num_classes", 0) else None
            frames.append(model.generate(interpolation_path(codes[2 * i], codes[2 * i + 1], steps), labels).cpu())
    strip = make_grid(torch.cat(frames).clamp(0, 1), nrow=steps)
    written["interpolation"] = str(save_image(strip, folder / f"{stem}_interpolation.png", scale=2))
    csv_path = run / "metrics.csv"
    if csv_path.is_file():
        available = read_metrics_csv(csv_path)
        columns = [c for c in available if c.endswith("/loss") or c in GAN_PROBABILITIES]
        try:
            written["training"] = str(plot_metrics(csv_path, folder / f"{stem}_training.png", columns or None,
                                                   title=f"{name}: training"))
        except DataError:  # fewer than two rows: nothing to draw
            pass
    return written


def _plot_bars(entries: list[dict], path: Path) -> str | None:
    """One panel per headline metric, one bar per run."""
    panels = [(key, label) for key, label in (("fid", "FID (lower is better)"), ("sharpness", "sharpness (real = 1)"),
                                              ("precision", "precision"), ("recall", "recall"),
                                              ("coverage", "coverage"), ("smoothness_evenness", "path evenness (0 = even)"))
              if any(key in e["metrics"] and math.isfinite(e["metrics"][key]) for e in entries)]
    if not panels:
        return None
    plt = _pyplot()
    figure, axes = plt.subplots(1, len(panels), figsize=(2.6 * len(panels), 2.8), squeeze=False)
    names = [e["name"] for e in entries]
    for axis, (key, label) in zip(axes.flat, panels):
        values = [e["metrics"].get(key, math.nan) for e in entries]
        axis.bar(range(len(names)), [0 if math.isnan(v) else v for v in values], color=[f"C{i}" for i in range(len(names))])
        axis.set_xticks(range(len(names)), names, rotation=20, fontsize=8)
        axis.set_title(label, fontsize=9)
        if key == "sharpness":
            axis.axhline(1.0, color="black", linestyle="--", linewidth=1)
        axis.grid(alpha=0.3, axis="y")
    figure.tight_layout()
    return str(_save_figure(figure, path))


# ------------------------------------------------------------------------------------------------ the table


def _number(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, float) and math.isinf(value):
        return "∞" if value > 0 else "−∞"
    return f"{value:.{digits}g}" if abs(value) < 1000 else f"{value:,.0f}"


def _cell(entry: dict, keys: Sequence[str], template: str, missing: str = "n/a", digits: int = 3) -> str:
    metrics = entry["metrics"]
    if not all(key in metrics for key in keys):
        return missing
    return template.format(*(_number(metrics[key], digits) for key in keys))


def _stability_cells(entry: dict) -> tuple[str, str, str]:
    stability = entry["stability"]
    if not stability or not stability.get("main_loss"):
        return "no training log", "no training log", "n/a"
    main = stability["main_loss"]
    loss = stability["losses"][main]
    others = [f"{name} {_number(s['cv'], 2)}" for name, s in stability["losses"].items() if name != main]
    cv = f"{main} {_number(loss['cv'], 2)}" + (f" ({', '.join(others)})" if others else "")
    oscillation = f"{main} {_number(loss['oscillation'], 2)}"
    if "d_gap" in stability:
        real, fake = stability["D/real_prob"], stability["D/fake_prob"]
        contest = (f"D(x) {_number(real['mean'], 2)}±{_number(real['std'], 1)}, D(G(z)) {_number(fake['mean'], 2)}"
                   f"±{_number(fake['std'], 1)}; gap {_number(stability['d_gap'], 2)}")
    else:
        contest = "n/a (no adversary)"
    if stability.get("recoveries"):
        contest += f"; {stability['recoveries']} divergence recoveries"
    return cv, oscillation, contest


def _table(entries: list[dict]) -> list[dict[str, Any]]:
    """Rows: property, what is measured, one cell per run."""
    rows = []

    def row(prop: str, measure: str, cells: list[str]) -> None:
        rows.append({"property": prop, "measure": measure, "values": cells})

    row("Output sharpness", "Laplacian energy vs real images (1.0 = as sharp)", [_cell(e, ["sharpness"], "{}") for e in entries])
    row("Output sharpness", "FID in judge features (lower is better)", [_cell(e, ["fid"], "{}", digits=4) for e in entries])
    row("Output sharpness", "KID ± std over subsets (≈0 = same distribution)",
        [_cell(e, ["kid_mean", "kid_std"], "{} ± {}") for e in entries])
    row("Sample fidelity", "precision / density", [_cell(e, ["precision", "density"], "{} / {}") for e in entries])
    row("Mode collapse", "classes covered (judge)",
        [_cell(e, ["classes_covered", "num_classes"], "{} of {}") for e in entries])
    row("Mode collapse", "recall / coverage", [_cell(e, ["recall", "coverage"], "{} / {}") for e in entries])
    row("Mode collapse", "KL(sample class mix ‖ real), nats", [_cell(e, ["classes_kl_to_reference"], "{}") for e in entries])
    row("Latent space", "path evenness (0 = even steps) / straightness (1 = straight)",
        [_cell(e, ["smoothness_evenness", "smoothness_straightness"], "{} / {}") for e in entries])
    stability = [_stability_cells(e) for e in entries]
    row("Training stability", "CV of the loss, last half (std/|mean|)", [s[0] for s in stability])
    row("Training stability", "oscillation of the loss (sign changes of Δ)", [s[1] for s in stability])
    row("Training stability", "D(x) / D(G(z)), last half", [s[2] for s in stability])
    row("Likelihood", "ELBO / IWAE bound, nats per image",
        [_cell(e, ["elbo_nats", "iwae_nats", "iwae_k"], "{} / {} (k={})", "none (implicit model)", 4) for e in entries])
    row("Likelihood", "bits/dim (IWAE)", [_cell(e, ["bits_per_dim"], "{}", "none") for e in entries])
    row("Encoder", "reconstruction MSE / PSNR dB / SSIM",
        [_cell(e, ["recon_mse", "recon_psnr", "recon_ssim"], "{} / {} / {}", "none: needs inversion") for e in entries])
    if any("inception_score_mean" in e["metrics"] for e in entries):
        row("Sample fidelity", "Inception Score with the judge's classes",
            [_cell(e, ["inception_score_mean"], "{}") for e in entries])
    if any("cas" in e["metrics"] for e in entries):
        row("Class conditioning", "CAS: accuracy on real data of a classifier trained on samples",
            [_cell(e, ["cas"], "{}") for e in entries])
    order = ["Output sharpness", "Sample fidelity", "Mode collapse", "Class conditioning", "Latent space",
             "Training stability", "Likelihood", "Encoder"]
    return sorted(rows, key=lambda r: order.index(r["property"]))


# ------------------------------------------------------------------------------------------------ the verdict


def _best(entries: list[dict], key: str, lower: bool = False, transform: Callable[[float], float] | None = None):
    scored = [(e, e["metrics"][key]) for e in entries if key in e["metrics"] and math.isfinite(e["metrics"][key])]
    if len(scored) < 2:
        return None, scored
    score = (lambda v: transform(v)) if transform else (lambda v: v)
    best = (min if lower else max)(scored, key=lambda pair: score(pair[1]))
    return best[0], scored


def _list(scored: list[tuple[dict, float]], digits: int = 3, suffix: str = "") -> str:
    return ", ".join(f"{e['name']} {_number(v, digits)}{suffix}" for e, v in scored)


def _verdict(entries: list[dict], dataset_name: str) -> str:
    """A short, number-backed 'which one should I use, and why'."""
    if len(entries) == 1:
        e = entries[0]
        parts = [f"Only one run was measured ({e['name']}, a {e['kind'].upper()})"]
        if "fid" in e["metrics"]:
            parts.append(f"FID {_number(e['metrics']['fid'], 4)}, sharpness {_number(e['metrics'].get('sharpness'))}× the data's")
        return "; ".join(parts) + ". Compare it with another run to get a recommendation."
    sentences = []
    quality, fid_scored = _best(entries, "fid", lower=True)
    if quality is not None:
        sentences.append(f"{quality['name']} has the lowest FID ({_list(fid_scored, 4)}): its samples are the closest "
                         f"to {dataset_name!r} in the judge's feature space.")
    sharp, sharp_scored = _best(entries, "sharpness", lower=True, transform=lambda v: abs(math.log(max(v, 1e-12))))
    if sharp is not None:
        sentences.append(f"{sharp['name']}'s samples are the closest to the data's sharpness "
                         f"({_list(sharp_scored, 2, '×')} the real images' Laplacian energy; below 1 is blurrier).")
    coverage, coverage_scored = _best(entries, "coverage")
    if coverage is not None:
        detail = "; ".join(f"{e['name']} {_number(v, 2)} / {_number(e['metrics'].get('recall'), 2)}"
                           for e, v in coverage_scored)
        sentence = f"{coverage['name']} covers the most of the data (coverage / recall: {detail})"
        if all("classes_covered" in e["metrics"] for e, _ in coverage_scored):
            sentence += "; classes covered: " + ", ".join(
                f"{e['name']} {int(e['metrics']['classes_covered'])} of {int(e['metrics']['num_classes'])}"
                for e, _ in coverage_scored)
        sentences.append(sentence + ".")
    even, even_scored = _best(entries, "smoothness_evenness", lower=True)
    if even is not None:
        sentences.append(f"{even['name']}'s latent interpolations move the most evenly through feature space "
                         f"(evenness {_list(even_scored, 2)}; 0 = equal steps).")
    with_likelihood = [e for e in entries if "iwae_nats" in e["metrics"]]
    with_encoder = [e for e in entries if "recon_psnr" in e["metrics"]]
    if with_encoder and len(with_encoder) < len(entries):
        names = ", ".join(e["name"] for e in with_encoder)
        detail = "; ".join(f"{e['name']}: reconstruction PSNR {_number(e['metrics']['recon_psnr'])} dB"
                           + (f", IWAE {_number(e['metrics']['iwae_nats'], 4)} nats "
                              f"({_number(e['metrics']['bits_per_dim'])} bits/dim)" if e in with_likelihood else "")
                           for e in with_encoder)
        sentences.append(f"Only {names} can encode real images"
                         + (" and bound their likelihood" if with_likelihood else "") + f" ({detail}); the others "
                         "would need inversion by optimisation and give no likelihood.")
    steady = [(e, e["stability"]["losses"][e["stability"]["main_loss"]]["cv"]) for e in entries
              if e["stability"] and e["stability"].get("main_loss")
              and math.isfinite(e["stability"]["losses"][e["stability"]["main_loss"]]["cv"])]
    if len(steady) >= 2:
        calm = min(steady, key=lambda pair: pair[1])[0]
        sentences.append(f"{calm['name']} trained the most steadily (CV of the main loss over the last half: "
                         + ", ".join(f"{e['name']} {_number(v, 2)} ({e['stability']['main_loss']})" for e, v in steady) + ").")
    recommendation = []
    if quality is not None:
        recommendation.append(f"use {quality['name']} when you want samples that look like the data")
    if sharp is not None and quality is not None and sharp is not quality:
        recommendation.append(f"{sharp['name']} if crisp detail matters more than matching the data's distribution "
                              f"(sharpness {_number(sharp['metrics']['sharpness'], 2)}× vs "
                              f"{_number(quality['metrics']['sharpness'], 2)}×)")
    encoder_pick = max(with_encoder, key=lambda e: e["metrics"]["recon_psnr"]) if with_encoder else None
    if encoder_pick is not None and (quality is None or encoder_pick is not quality):
        recommendation.append(f"{encoder_pick['name']} when you need to encode, reconstruct or score real images"
                              + (" (likelihoods for anomaly detection or compression)" if encoder_pick in with_likelihood else ""))
    elif encoder_pick is not None:
        recommendation.append(f"{encoder_pick['name']} is also the one that encodes and reconstructs real images"
                              + (" and bounds their likelihood" if encoder_pick in with_likelihood else ""))
    if recommendation:
        text = "; ".join(recommendation)
        sentences.append("In short: " + text[0].upper() + text[1:] + ".")
    return " ".join(sentences)


# ------------------------------------------------------------------------------------------------ writing


def _jsonable(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)  # JSON has no NaN/inf
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _write(path: Path, text: str) -> None:
    with atomic_write(path) as stream:
        stream.write(text.encode())


def _relative(path: str | None, out: Path) -> str | None:
    return None if path is None else os.path.relpath(path, out)


def _markdown(results: dict, out: Path) -> str:
    entries = results["runs"]
    lines = [f"# {' vs '.join(e['name'] for e in entries)} on {results['dataset']}", "",
             (f"{results['num_samples']} samples per run against {results['num_real']} real images "
              f"({results['features']} features); measured in {results['seconds']} s."), "",
             "| property | measured as | " + " | ".join(f"{e['name']} ({e['kind'].upper()})" for e in entries) + " |",
             "|---|---|" + "---|" * len(entries)]
    for row in results["table"]:
        lines.append(f"| {row['property']} | {row['measure']} | " + " | ".join(row["values"]) + " |")
    lines += ["", "## Pictures", ""]
    for e in entries:
        lines.append(f"### {e['name']}")
        for key, caption in (("samples", "samples"), ("interpolation", "interpolations (4 slerp paths)"),
                             ("training", "training curves")):
            if key in e["pictures"]:
                lines.append(f"![{e['name']} {caption}]({_relative(e['pictures'][key], out)})")
        lines.append("")
    if results["pictures"].get("metrics"):
        lines += [f"![metrics]({_relative(results['pictures']['metrics'], out)})", ""]
    lines += ["## Which one should I use?", "", results["verdict"], "", _NOTES, ""]
    return "\n".join(lines)


_NOTES = ("Definitions: FID/KID/precision/recall/density/coverage are computed on the judge's penultimate "
          "features (a small classifier, not Inception: compare these numbers only with each other). Stability is "
          "read from each run's metrics.csv over the last half of training: CV = std/|mean| of the loss, "
          "oscillation = share of sign changes of its first difference (0 monotone, ~2/3 noise). See "
          "`genlab.evaluation.api.METRICS` and `genlab.reporting.comparison.training_stability`.")


def _data_uri(path: str | None) -> str:
    if path is None or not Path(path).is_file():
        return ""
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def _html(results: dict, out: Path) -> str:
    entries = results["runs"]
    escape = html.escape
    head = "".join(f"<th>{escape(e['name'])} ({e['kind'].upper()})</th>" for e in entries)
    body = "".join(f"<tr><th>{escape(r['property'])}</th><td>{escape(r['measure'])}</td>"
                   + "".join(f"<td>{escape(v)}</td>" for v in r["values"]) + "</tr>" for r in results["table"])
    figures = []
    for e in entries:
        images = "".join(f"<figure><img src=\"{_data_uri(e['pictures'].get(key))}\" alt=\"{escape(e['name'])} {key}\">"
                         f"<figcaption>{escape(key)}</figcaption></figure>"
                         for key in ("samples", "interpolation", "training") if key in e["pictures"])
        figures.append(f"<h3>{escape(e['name'])}</h3><div class=\"row\">{images}</div>")
    if results["pictures"].get("metrics"):
        figures.append(f"<img src=\"{_data_uri(results['pictures']['metrics'])}\" alt=\"metrics\">")
    title = escape(f"{' vs '.join(e['name'] for e in entries)} on {results['dataset']}")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }} th, td {{ border: 1px solid #ccc; padding: .35em .6em; text-align: left; }}
thead th {{ background: #f3f3f3; }} tbody th {{ font-weight: 600; background: #fafafa; }}
.row {{ display: flex; flex-wrap: wrap; gap: 1em; align-items: flex-start; }} figure {{ margin: 0; }}
img {{ max-width: 100%; image-rendering: pixelated; }} figcaption {{ font-size: .85em; color: #555; }}
.verdict {{ background: #f6f8ff; border-left: 4px solid #4060c0; padding: .8em 1em; }}
</style></head><body>
<h1>{title}</h1>
<p>{results['num_samples']} samples per run against {results['num_real']} real images ({escape(results['features'])} features); measured in {results['seconds']} s.</p>
<table><thead><tr><th>property</th><th>measured as</th>{head}</tr></thead><tbody>{body}</tbody></table>
<h2>Pictures</h2>
{''.join(figures)}
<h2>Which one should I use?</h2>
<p class="verdict">{escape(results['verdict'])}</p>
<p><small>{escape(_NOTES)}</small></p>
</body></html>
"""
