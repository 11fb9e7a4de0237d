"""Plots of measured results: training curves from metrics.csv, the GAN monitor, 2-D point scatter plots."""
from __future__ import annotations

import csv
import math
import os
from pathlib import Path

from genlab.errors import DataError
from genlab.io.files import atomic_write

AXES = ("step", "epoch")
NOT_PLOTTED = ("time",)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save_figure(figure, png_path: str | os.PathLike) -> Path:
    plt = _pyplot()
    try:
        with atomic_write(png_path) as stream:
            figure.savefig(stream, format="png", dpi=100)
    finally:
        plt.close(figure)
    return Path(png_path)


def read_metrics_csv(path: str | os.PathLike) -> dict[str, list[float]]:
    """Columns of a metrics CSV as lists of floats (empty cells become NaN)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: metrics file not found")
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        columns: dict[str, list[float]] = {name: [] for name in reader.fieldnames or []}
        for row in reader:
            for name in columns:
                cell = row.get(name) or ""
                try:
                    columns[name].append(float(cell) if cell != "" else math.nan)
                except ValueError:
                    raise DataError(f"{path}: column {name!r} holds {cell!r}, expected a number") from None
    return columns


def _smooth(values: list[float], window: int) -> list[float]:
    """Trailing moving average, ignoring NaN."""
    out, kept = [], []
    for value in values:
        kept.append(value)
        finite = [v for v in kept[-window:] if not math.isnan(v)]
        out.append(sum(finite) / len(finite) if finite else math.nan)
    return out


def plot_metrics(csv_path: str | os.PathLike, png_path: str | os.PathLike, columns: list[str] | None = None,
                 x: str = "step", title: str | None = None) -> Path:
    """One PNG of the logged curves, one panel (with its own scale) per column.

    Raw values are drawn faintly with a moving average on top when there are many points.
    """
    plt = _pyplot()
    data = read_metrics_csv(csv_path)
    if x not in data:
        raise DataError(f"{csv_path}: no {x!r} column to plot against")
    names = columns or [c for c in data if c not in AXES + NOT_PLOTTED]
    missing = [c for c in names if c not in data]
    if missing:
        raise DataError(f"{csv_path}: no column(s) {', '.join(missing)}")
    if not names or len(data[x]) < 2:
        raise DataError(f"{csv_path}: fewer than two rows, nothing to plot")
    columns_per_row = 2 if len(names) > 1 else 1
    rows = math.ceil(len(names) / columns_per_row)
    figure, axes = plt.subplots(rows, columns_per_row, figsize=(5 * columns_per_row, 2.6 * rows), squeeze=False)
    window = max(1, len(data[x]) // 20)
    for axis, name in zip(axes.flat, names, strict=False):  # an odd count leaves one spare axis, hidden below
        if window > 1:  # raw values faintly, a moving average on top
            line, = axis.plot(data[x], data[name], alpha=0.3, linewidth=0.8)
            axis.plot(data[x], _smooth(data[name], window), color=line.get_color())
        else:
            axis.plot(data[x], data[name])
        axis.set_title(name, fontsize=10, loc="left")
        axis.grid(alpha=0.3)
        axis.set_xlabel(x, fontsize=8)
    for axis in list(axes.flat)[len(names):]:
        axis.set_visible(False)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return _save_figure(figure, png_path)


def plot_monitor(csv_path: str | os.PathLike, png_path: str | os.PathLike, columns: list[str], x: str = "step") -> Path:
    """The contest made visible: e.g. D(x) and D(G(z)) as probabilities over training, with the
    0.5 line where a discriminator that can no longer tell real from fake sits (Goodfellow et al.
    2014, Prop. 1: at the optimum of the game D*(x) = 1/2)."""
    plt = _pyplot()
    data = read_metrics_csv(csv_path)
    present = [c for c in columns if c in data]
    if not present or len(data.get(x, [])) < 2:
        raise DataError(f"{csv_path}: no {', '.join(columns)} rows to plot")
    figure, axis = plt.subplots(figsize=(7, 3.2))
    window = max(1, len(data[x]) // 20)
    for name in present:
        line, = axis.plot(data[x], data[name], alpha=0.3 if window > 1 else 1.0, linewidth=0.8)
        if window > 1:
            axis.plot(data[x], _smooth(data[name], window), color=line.get_color(), label=name)
        else:
            line.set_label(name)
    axis.axhline(0.5, color="black", linestyle="--", linewidth=1, label="equilibrium (0.5)")
    axis.set_ylim(-0.02, 1.02)
    axis.set_xlabel(x)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8, loc="best")
    figure.tight_layout()
    return _save_figure(figure, png_path)


def plot_points(points, png_path: str | os.PathLike, centers=None, title: str | None = None) -> Path:
    """A scatter plot of 2-D samples, over the true mode centres when given."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(4.5, 4.5))
    axis.scatter(points[:, 0], points[:, 1], s=3, alpha=0.5, label="samples")
    if centers is not None:
        axis.scatter(centers[:, 0], centers[:, 1], s=40, marker="x", color="red", label="modes")
        span = float(abs(centers).max()) * 1.5 + 0.5
        axis.set_xlim(-span, span)
        axis.set_ylim(-span, span)
    axis.set_aspect("equal")
    axis.legend(fontsize=8, loc="upper right")
    if title:
        axis.set_title(title)
    figure.tight_layout()
    return _save_figure(figure, png_path)
