"""``genlab.compare``: the classic VAE-vs-GAN property table, every row measured for every run.

    genlab.compare(["runs/vae", "runs/gan"], genlab.load_dataset("fashion-mnist", split="test"), "report/")

writes ``report.md``, a self-contained ``report.html`` (pictures embedded as data URIs) and
``results.json`` to ``out_dir``, plus the pictures in ``out_dir/images/``. Each row of the table is
a measurement, never a textbook claim:

==============================  ===============================================================
fidelity and diversity          FID and KID of the samples vs the data, in judge features
output sharpness                Laplacian-energy ratio to real images
sample fidelity                 precision and density (Naeem et al. 2020)
mode collapse                   classes covered by the samples (judge), recall and coverage
latent space                    evenness / straightness of slerp paths in feature space, and a strip
training stability              from metrics.csv, over the last half of training (``stability.py``)
likelihood                      ELBO and IWAE(k) in nats and bits/dim, or "none (implicit model)"
encoder                         reconstruction MSE / PSNR / SSIM, or "none: needs inversion"
==============================  ===============================================================

The report ends with a "which one should I use" paragraph built from these numbers. The pictures
are drawn by ``pictures.py``, the files written by ``documents.py``.
"""
from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from genlab.data.dataset import Dataset
from genlab.errors import ConfigError
from genlab.evaluation.api import applicable_metrics, evaluate, parse_metrics
from genlab.evaluation.registry import METRICS
from genlab.models.judge import resolve_judge
from genlab.reporting.documents import write_documents
from genlab.reporting.pictures import write_metric_bars, write_run_pictures
from genlab.reporting.stability import training_stability
from genlab.runs import load

DEFAULT_NUM_SAMPLES = 5000
DISTRIBUTION = "Fidelity and diversity"  # the table's property for FID and KID


def compare(runs: Sequence[str | os.PathLike], dataset: Dataset, out_dir: str | os.PathLike, *,
            num_samples: int = DEFAULT_NUM_SAMPLES, judge: Any = None, features: str = "judge", seed: int = 0,
            metrics: Sequence[str] | str | None = None, progress: bool = True,
            log: Callable[[str], None] = print) -> dict[str, Any]:
    """Evaluate each run (``num_samples`` samples, against ``dataset``), read its training log, draw
    its pictures, and write the report to ``out_dir``. ``metrics``: names to compute where they
    apply (default: every default metric that applies, so not ``cas``, which trains a classifier
    for minutes; name it to get the table's "Class conditioning" row). Returns what results.json holds: per run its kind, metrics,
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
    for name, run in zip(names, runs, strict=True):
        model = load(run)
        log(f"Evaluating {name} ({model.kind.upper()}, {num_samples} samples against {dataset.name!r})")
        applicable = applicable_metrics(model, dataset)
        chosen = ([m for m in applicable if METRICS[m].default] if wanted is None
                  else [m for m in wanted if m in applicable])
        measured = evaluate(model, dataset, chosen, num_samples, judge=judge, features=features, seed=seed,
                            progress=progress) if chosen else {}
        csv_path = Path(run) / "metrics.csv"
        stability = training_stability(csv_path) if csv_path.is_file() else None
        entry = {"name": name, "path": str(run), "kind": model.kind, "num_classes": int(getattr(model.config, "num_classes", 0) or 0),
                 "metrics": measured, "stability": stability,
                 "pictures": write_run_pictures(name, model, dataset, Path(run), out / "images", seed)}
        entries.append(entry)
    pictures = {"metrics": write_metric_bars(entries, out / "images" / "metrics.png")}
    rows = _table(entries)
    verdict = _verdict(entries, dataset.name)
    results = {"dataset": dataset.name, "num_real": len(dataset), "num_samples": num_samples, "features": features,
               "runs": entries, "table": rows, "verdict": verdict, "pictures": pictures,
               "seconds": round(time.perf_counter() - started, 1)}
    write_documents(results, out)
    return results


def _run_names(paths: list[Path]) -> list[str]:
    names = [path.resolve().name for path in paths]
    if len(set(names)) < len(names):  # e.g. a/run and b/run: add the parent folder
        names = [f"{path.resolve().parent.name}/{path.resolve().name}" for path in paths]
    if len(set(names)) < len(names):
        raise ConfigError(f"compare got the same run more than once: {', '.join(map(str, paths))}")
    return names


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

    # FID and KID compare the whole distribution of the samples with the data's, so they grow with lost fidelity
    # and with lost diversity alike: a row of their own, not a measure of sharpness.
    row(DISTRIBUTION, "FID in judge features (lower is better)", [_cell(e, ["fid"], "{}", digits=4) for e in entries])
    row(DISTRIBUTION, "KID ± std over subsets (≈0 = same distribution)",
        [_cell(e, ["kid_mean", "kid_std"], "{} ± {}") for e in entries])
    row("Output sharpness", "Laplacian energy vs real images (1.0 = as sharp)", [_cell(e, ["sharpness"], "{}") for e in entries])
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
    order = [DISTRIBUTION, "Output sharpness", "Sample fidelity", "Mode collapse", "Class conditioning", "Latent space",
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


__all__ = ["compare"]
