"""The comparison report's files: results.json, report.md and a self-contained report.html, written
from the dict ``genlab.compare`` returns (``write_documents``).
"""
from __future__ import annotations

import base64
import html
import json
import math
import os
from pathlib import Path
from typing import Any

from genlab.io.files import atomic_write


def write_documents(results: dict, out: Path) -> None:
    """results.json, report.md and report.html in ``out``, each written atomically."""
    _write(out / "results.json", json.dumps(jsonable(results), indent=2) + "\n")
    _write(out / "report.md", markdown(results, out))
    _write(out / "report.html", html_page(results, out))


def jsonable(value: Any) -> Any:
    """``value`` with NaN/inf floats as strings (JSON has neither), dict keys as strings."""
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def _write(path: Path, text: str) -> None:
    with atomic_write(path) as stream:
        stream.write(text.encode())


def _relative(path: str | None, out: Path) -> str | None:
    return None if path is None else os.path.relpath(path, out)


def markdown(results: dict, out: Path) -> str:
    """report.md: the table, the pictures (paths relative to ``out``), the verdict and the definitions."""
    entries = results["runs"]
    lines = [f"# {' vs '.join(e['name'] for e in entries)} on {results['dataset']}", "",
             (f"{results['num_samples']} samples per run against {results['num_real']} real images "
              f"({results['features']} features); measured in {results['seconds']} s."), "",
             "| property | measured as | " + " | ".join(f"{e['name']} ({e['kind'].upper()})" for e in entries) + " |",
             "|---|---|" + "---|" * len(entries)]
    lines += [f"| {row['property']} | {row['measure']} | " + " | ".join(row["values"]) + " |" for row in results["table"]]
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
    lines += ["## Which one should I use?", "", results["verdict"], "", _notes(results["features"]), ""]
    return "\n".join(lines)


def _notes(features: str) -> str:
    space = ("InceptionV3's pool features (torch-fidelity's FID network)" if features == "inception" else
             "the judge's penultimate features (a small classifier, not Inception: compare these numbers only "
             "with each other)")
    return (f"Definitions: FID/KID/precision/recall/density/coverage are computed on {space}. Stability is "
            "read from each run's metrics.csv over the last half of training: CV = std/|mean| of the loss, "
            "oscillation = share of sign changes of its first difference (0 monotone, ~2/3 noise). See "
            "`genlab.evaluation.METRICS` and `genlab.reporting.stability.training_stability`.")


def _data_uri(path: str | None) -> str:
    if path is None or not Path(path).is_file():
        return ""
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def html_page(results: dict, out: Path) -> str:
    """report.html: what report.md holds, self-contained (pictures embedded as data URIs)."""
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
<p>{results['num_samples']} samples per run against {results['num_real']} real images
({escape(results['features'])} features); measured in {results['seconds']} s.</p>
<table><thead><tr><th>property</th><th>measured as</th>{head}</tr></thead><tbody>{body}</tbody></table>
<h2>Pictures</h2>
{''.join(figures)}
<h2>Which one should I use?</h2>
<p class="verdict">{escape(results['verdict'])}</p>
<p><small>{escape(_notes(results['features']))}</small></p>
</body></html>
"""


__all__ = ["html_page", "jsonable", "markdown", "write_documents"]
