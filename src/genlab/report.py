"""Measured results as pictures and tables. For now: the training curves from metrics.csv."""
from __future__ import annotations

import csv
import math
import os
from pathlib import Path

from genlab.errors import DataError

AXES = ("step", "epoch")
NOT_PLOTTED = ("time",)


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
    """One PNG of the logged curves: one panel per phase ("vae/recon" and "vae/kl" share "vae").

    Raw values are drawn faintly with a moving average on top when there are many points.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = read_metrics_csv(csv_path)
    if x not in data:
        raise DataError(f"{csv_path}: no {x!r} column to plot against")
    names = columns or [c for c in data if c not in AXES + NOT_PLOTTED]
    missing = [c for c in names if c not in data]
    if missing:
        raise DataError(f"{csv_path}: no column(s) {', '.join(missing)}")
    if not names or len(data[x]) < 2:
        raise DataError(f"{csv_path}: fewer than two rows, nothing to plot")
    panels: dict[str, list[str]] = {}
    for name in names:
        panels.setdefault(name.split("/", 1)[0] if "/" in name else name, []).append(name)
    figure, axes = plt.subplots(len(panels), 1, figsize=(7, 2.6 * len(panels)), squeeze=False, sharex=True)
    window = max(1, len(data[x]) // 20)
    for axis, (panel, members) in zip(axes[:, 0], panels.items()):
        for name in members:
            label = name.split("/", 1)[-1]
            if window > 1:
                line, = axis.plot(data[x], data[name], alpha=0.25, linewidth=0.8)
                axis.plot(data[x], _smooth(data[name], window), color=line.get_color(), label=label)
            else:
                axis.plot(data[x], data[name], label=label)
        axis.set_title(panel, fontsize=10, loc="left")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    axes[-1, 0].set_xlabel(x)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    png_path = Path(png_path)
    png_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = png_path.with_name(f".{png_path.name}.tmp.png")
    figure.savefig(tmp, dpi=100)
    plt.close(figure)
    os.replace(tmp, png_path)
    return png_path
