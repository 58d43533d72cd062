"""report.html: one self-contained page per run (or one page comparing several runs).

The page holds the config, the metrics table (``table#metrics``), the loss curves, reconstructions,
samples, the 2-D code map, interpolation strips, for 2-D generative models the manifold grid,
and the figures a model adds to show its point (the DAE's denoising rows, the sparse code histogram).
Every image is inlined as a base64 PNG data URI and the CSS is inline: no external resource, no
script, so the file opens from disk, offline, and can be mailed or archived on its own.
"""

from __future__ import annotations

import base64
import html
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ..errors import path_access

FIGURES = [  # (file written by write_run_figures, caption)
    ("losses.png", "Loss curves (train and validation, per epoch)"),
    ("reconstructions.png", "Test examples (top) and their reconstructions (bottom)"),
    ("samples.png", "Samples drawn from the model"),
    ("latent.png", "Codes of the test data, coloured by label (top-2 principal components if wider than 2-D)"),
    ("interpolation.png", "Decoded straight lines between the codes of pairs of test examples"),
    ("manifold.png", "Manifold: decoded 15 x 15 grid of 2-D codes over [-2.5, 2.5]^2"),
]

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1100px;
color:#222;padding:0 1em}
h1{font-size:1.6em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}
figure{display:inline-block;margin:.5em 1em .5em 0;vertical-align:top}
figure img{max-width:100%;border:1px solid #eee;image-rendering:pixelated}
figcaption{font-size:.85em;color:#555;max-width:520px}
pre{background:#f7f7f7;padding:.6em;overflow:auto;font-size:.85em}
.runs{display:flex;flex-wrap:wrap;gap:1em}.run{flex:1 1 480px}
"""


def data_uri(path: str | Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def _png_width(path: Path) -> int | None:
    head = Path(path).read_bytes()[:24]
    if head[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    return int.from_bytes(head[16:20], "big")


def _fmt(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return html.escape(str(v))
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, int):
        return str(v)
    return html.escape(str(v))


@dataclass
class RunPage:
    """What one run's section of a report shows: it is handed in, never read from a run directory here."""

    label: str  # the run's name on the page
    info: dict[str, Any]  # config.json
    metrics: dict[str, Any]  # metrics.json
    fig_dir: Path  # where the run's figures (FIGURES and the model's own) were written
    model_figures: dict[str, str] = field(default_factory=dict)  # the model's own: stem -> caption
    path: Path | None = None  # the run directory, if any


def _figures_html(page: RunPage) -> str:
    """The run's figures in ``page.fig_dir``: the common ones, then the model's own."""
    own = [(f"{stem}.png", caption) for stem, caption in page.model_figures.items()]
    parts = []
    for name, caption in FIGURES + own:
        p = page.fig_dir / name
        if p.is_file():
            alt = html.escape(name[:-4])
            # Image grids of small images (8x8 digits) are drawn larger, pixels kept sharp by the CSS.
            width = _png_width(p)
            style = ' style="width:480px"' if width is not None and width < 400 else ""
            parts.append(f'<figure><img src="{data_uri(p)}" alt="{alt}"{style}><figcaption>'
                         f"{html.escape(caption)}</figcaption></figure>")
    return "\n".join(parts)


def metric_rows(metrics: dict[str, Any]) -> list[tuple[str, Any]]:
    """Flat (name, value) rows of metrics.json: top-level scalars, then ``split.key`` for each split."""
    rows = []
    for k, v in metrics.items():
        if isinstance(v, dict):
            for kk, vv in v.items():
                if not isinstance(vv, (dict, list)):
                    rows.append((f"{k}.{kk}", vv))
        elif not isinstance(v, list):
            rows.append((k, v))
    return rows


def _page(title: str, body: str) -> str:
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{CSS}</style></head><body>\n{body}\n</body></html>\n")


def run_report_html(page: RunPage) -> str:
    info = page.info
    d = info.get("data", {})
    title = f"hourglass run: {info.get('model')} on {d.get('name')}"
    rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{_fmt(v)}</td></tr>" for k, v in metric_rows(page.metrics))
    summary = (f"<p>Model <b>{html.escape(str(info.get('model')))}</b>"
               + (f" (preset {html.escape(str(info['preset']))})" if info.get("preset") else "")
               + f", latent dim {_fmt(info.get('config', {}).get('latent_dim'))}, data <b>"
               f"{html.escape(str(d.get('name')))}</b> ({_fmt(d.get('n_train'))} train, {_fmt(d.get('n_val'))} "
               f"validation, {_fmt(d.get('n_test'))} test examples, shape {html.escape(str(d.get('input_shape')))})"
               + (f"; class {d['exclude_class']} left out of training" if d.get("exclude_class") is not None else "")
               + f". Created {html.escape(str(info.get('created', '')))}"
               + (f", directory <code>{html.escape(str(page.path))}</code>" if page.path else "") + ".</p>")
    body = (f"<h1>{html.escape(title)}</h1>\n{summary}\n<h2>Metrics</h2>\n"
            f'<table id="metrics"><thead><tr><th>metric</th><th>value</th></tr></thead><tbody>{rows}'
            f"</tbody></table>\n<h2>Figures</h2>\n{_figures_html(page)}\n"
            f"<h2>Config</h2>\n<pre>{html.escape(json.dumps(info, indent=2))}</pre>")
    return _page(title, body)


def comparison_html(pages: Sequence[RunPage]) -> str:
    names = [p.label for p in pages]
    rows_by_run = [dict(metric_rows(p.metrics)) for p in pages]
    keys: list[str] = []
    for rows in rows_by_run:
        keys += [k for k in rows if k not in keys]
    head = "".join(f"<th>{html.escape(n)}</th>" for n in names)
    body_rows = "".join(
        f"<tr><td>{html.escape(k)}</td>" + "".join(f"<td>{_fmt(rows[k]) if k in rows else '&ndash;'}</td>"
                                                     for rows in rows_by_run) + "</tr>" for k in keys)
    cfg_keys: list[str] = []
    for p in pages:
        cfg_keys += [k for k in p.info.get("config", {}) if k not in cfg_keys]
    cfg_rows = "".join(
        f"<tr><td>{html.escape(k)}</td>" + "".join(f"<td>{_fmt(p.info.get('config', {}).get(k, ''))}</td>"
                                                     for p in pages) + "</tr>" for k in cfg_keys)
    sections = "".join(f'<div class="run"><h2>{html.escape(p.label)}</h2>{_figures_html(p)}</div>' for p in pages)
    title = f"hourglass: {len(pages)} runs compared"
    body = (f"<h1>{html.escape(title)}</h1>\n<h2>Metrics</h2>\n<table id=\"metrics\"><thead><tr><th>metric</th>{head}"
            f"</tr></thead><tbody>{body_rows}</tbody></table>\n<h2>Config</h2>\n<table id=\"config\"><thead><tr>"
            f"<th>field</th>{head}</tr></thead><tbody>{cfg_rows}</tbody></table>\n"
            f'<div class="runs">{sections}</div>')
    return _page(title, body)


def write_html(output: str | Path, page_html: str) -> Path:
    """Write a page to ``output`` (its folder is created)."""
    output = Path(output)
    with path_access(output, "write"):
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(page_html, encoding="utf-8")
    return output
