"""report.html: one self-contained page per run (or one page comparing several runs).

The page holds a highlighted box with the warnings of the collapse diagnostics (``div.warnings``), the
metrics table (``table#metrics``: each metric with a one-line explanation and whether higher or lower
is better), the loss curves, reconstructions, samples, the 2-D code map, interpolation strips, for 2-D
generative models the manifold grid, the figures a model adds to show its point (the DAE's denoising
rows, the sparse code histogram) and the config as tables (``table#config``). A page comparing runs
overlays their loss curves on one set of axes and puts their metrics and configs side by side.
Every image is inlined as a base64 PNG data URI and the CSS is inline: no external resource, no
script, so the file opens from disk, offline, and can be mailed or archived on its own.
"""

from __future__ import annotations

import base64
import html
import io
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
td.what{text-align:left;color:#555;font-size:.9em}th.what{text-align:left}td.dir{text-align:center;color:#555;font-size:.9em}
.warnings{background:#fff4e5;border:2px solid #e69500;border-radius:6px;padding:.6em 1em;margin:1em 0}
.warnings h2{margin-top:.2em;border:none;color:#8a5300}.warnings li{margin:.3em 0}
.ok{background:#eef8ee;border:1px solid #9c9;border-radius:6px;padding:.4em 1em;margin:1em 0;color:#363}
"""

# What each metric means, in one line, and which way is better ("higher", "lower" or "" when neither).
METRICS: dict[str, tuple[str, str]] = {
    "fit_seconds": ("wall-clock seconds of training (not evaluation)", ""),
    "epochs": ("epochs trained", ""),
    "stopped_early": ("whether early stopping ended training", ""),
    "device": ("where the model trained", ""),
    "n": ("examples the split's numbers are averaged over", ""),
    "recon_bce": ("mean binary cross-entropy per value between data and reconstruction (nats)", "lower"),
    "recon_mse": ("mean squared error per value between data and reconstruction (scaled units)", "lower"),
    "psnr": ("peak signal-to-noise ratio of the reconstructions, 10 log10(1 / MSE) (dB)", "higher"),
    "neg_elbo": ("negative evidence lower bound: reconstruction + KL (nats per example)", "lower"),
    "kl": ("KL(q(z|x) || p(z)): information the code carries (nats per example); near 0 = collapse", ""),
    "nll": ("importance-weighted estimate of -log p(x) (nats per example)", "lower"),
    "active_units": ("code dimensions whose posterior mean varies with the data (Var > 0.01); 0 = collapse",
                     "higher"),
    "kl_max_dim": ("largest KL of one code dimension (nats per example)", ""),
    "knn_acc": ("5-nearest-neighbour accuracy of test codes against training codes", "higher"),
    "probe_acc": ("accuracy of a logistic regression on the codes", "higher"),
    "kmeans_nmi": ("normalised mutual information of k-means clusters of the codes with the labels", "higher"),
    "kmeans_acc": ("accuracy of k-means clusters of the codes, best matching of clusters to classes", "higher"),
    "trustworthiness": ("are neighbours in code space neighbours in the data? (1 = always)", "higher"),
    "continuity": ("are neighbours in the data neighbours in code space? (1 = always)", "higher"),
    "fd_classifier": ("Frechet distance of samples to test data in a classifier's features (not FID)", "lower"),
    "fd_classifier_real": ("the same distance between real training and test data: the floor", ""),
    "sample_confidence": ("mean top class probability the data's classifier gives the samples", "higher"),
    "sample_class_balance": ("entropy of the samples' predicted classes / log K (1 = all equally often)",
                             "higher"),
    "recon_spread": ("mean distance between reconstructions / between the examples (~0: all the same blur)",
                     "near 1"),
    "sample_spread": ("mean distance between samples / between real examples (1 = as varied; ~0 = collapse)",
                      "near 1"),
    "sample_spread_within_class": ("the same within one class, z varied at fixed y (~0: z is ignored)", "near 1"),
    "d_real": ("discriminator's mean probability of 'real' on real inputs", "near 0.5"),
    "d_fake": ("discriminator's mean probability of 'real' on generated inputs", "near 0.5"),
    "disc_loss": ("discriminator loss -E log D(real) - E log(1 - D(fake)) (log 4 = 1.39 at balance)", ""),
    "gen_loss": ("generator loss -E log D(fake) (log 2 = 0.69 at balance)", ""),
    "classifier_accuracy": ("test accuracy of the model's own classifier q(y|x)", "higher"),
    "anomaly_auc": ("ROC-AUC of the reconstruction error at telling the left-out class from the rest", "higher"),
}


def metric_help(name: str) -> tuple[str, str]:
    """(one-line meaning, better direction) of a metric row ``split.key`` or ``key``."""
    key = name.split(".", 1)[1] if "." in name else name
    if name.startswith("anomaly.") and key != "auc":
        return ("the anomaly report's " + key.replace("_", " "), "")
    if key == "auc":
        key = "anomaly_auc"
    return METRICS.get(key, ("", ""))


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


@dataclass(kw_only=True)
class RunFacts:
    """The run's headline facts the report's summary line states (hourglass.run.report fills them in)."""

    model: str
    data_name: str
    preset: str | None = None
    latent_dim: Any = None
    n_train: int | None = None
    n_val: int | None = None
    n_test: int | None = None
    input_shape: Any = None
    exclude_class: int | None = None  # the class left out of training, if any
    created: str | None = None


@dataclass
class RunPage:
    """What one run's section of a report shows: it is handed in, never read from a run directory here."""

    label: str  # the run's name on the page
    facts: RunFacts  # the summary line
    settings: dict[str, dict[str, Any]]  # tables of settings: "config", "train", "data" -> field -> value
    metrics: dict[str, Any]  # metrics.json
    fig_dir: Path  # where the run's figures (FIGURES and the model's own) were written
    model_figures: dict[str, str] = field(default_factory=dict)  # the model's own: stem -> caption
    path: Path | None = None  # the run directory, if any
    history: list[dict[str, Any]] = field(default_factory=list)  # history.csv (the comparison overlays it)
    run_fields: dict[str, Any] = field(default_factory=dict)  # the "Run" table: preset, versions, created


def _warnings_html(pages: Sequence[RunPage]) -> str:
    """A highlighted box listing what the diagnostics found wrong (nothing when every run is healthy)."""
    items = []
    for p in pages:
        for w in p.metrics.get("warnings") or []:
            who = f"<b>{html.escape(p.label)}</b>: " if len(pages) > 1 else ""
            items.append(f"<li>{who}{html.escape(str(w.get('message', w)))}</li>")
    if not items:
        return ""
    return (f'<div class="warnings"><h2>Warning{"s" if len(items) > 1 else ""}: this run may not do what it is for'
            f"</h2><ul>{''.join(items)}</ul></div>")


def _config_tables(page: RunPage) -> str:
    """The run's settings as tables: model config, training options, data, then the run's own fields."""
    parts = []
    for key, title in (("config", "Model config"), ("train", "Training options"), ("data", "Data")):
        values = page.settings.get(key) or {}
        if not isinstance(values, dict) or not values:
            continue
        rows = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{_cfg(v)}</td></tr>" for k, v in values.items())
        tid = ' id="config"' if key == "config" else ""
        parts.append(f'<figure><table{tid}><caption>{title}</caption><thead><tr><th>field</th><th>value</th></tr>'
                     f"</thead><tbody>{rows}</tbody></table></figure>")
    other = {k: v for k, v in page.run_fields.items() if v}
    if other:
        rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{_cfg(v)}</td></tr>" for k, v in other.items())
        parts.append(f"<figure><table><caption>Run</caption><thead><tr><th>field</th><th>value</th></tr></thead>"
                     f"<tbody>{rows}</tbody></table></figure>")
    return "\n".join(parts)


def _cfg(v: Any) -> str:
    if isinstance(v, dict):
        return ", ".join(f"{html.escape(str(k))}: {_cfg(x)}" for k, x in v.items()) or "&ndash;"
    if isinstance(v, (list, tuple)):
        return html.escape(", ".join(str(x) for x in v)) if len(v) <= 16 else html.escape(
            ", ".join(str(x) for x in v[:16]) + f", ... ({len(v)} in all)")
    return _fmt(v)


def _metrics_table(names: Sequence[str], columns: Sequence[dict[str, Any]], heads: Sequence[str]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in heads)
    rows = []
    for k in names:
        what, better = metric_help(k)
        cells = "".join(f"<td>{_fmt(c[k]) if k in c else '&ndash;'}</td>" for c in columns)
        rows.append(f'<tr><td>{html.escape(k)}</td>{cells}<td class="dir">{html.escape(better)}</td>'
                    f'<td class="what">{html.escape(what)}</td></tr>')
    return (f'<table id="metrics"><thead><tr><th>metric</th>{head}<th>better</th>'
            f'<th class="what">what it measures</th></tr></thead><tbody>{"".join(rows)}</tbody></table>')


def _overlay_losses(pages: Sequence[RunPage]) -> str:
    """The runs' loss curves overlaid on one set of axes per quantity, as an inline PNG."""
    from . import figures

    histories = {p.label: p.history for p in pages if p.history}
    if not histories:
        return ""
    buf = io.BytesIO()
    figures.save_loss_curves(buf, histories)
    uri = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
    return (f'<figure><img src="{uri}" alt="losses compared"><figcaption>Loss curves of every run on the same axes '
            f"(solid: training, dashed: validation)</figcaption></figure>")


def _figures_html(page: RunPage) -> str:
    """The run's figures in ``page.fig_dir``: the common ones, then the model's own."""
    own = [(f"{stem}.png", caption) for stem, caption in page.model_figures.items()]
    parts = []
    for name, caption in FIGURES + own:
        p = page.fig_dir / name
        if p.is_file():
            alt = html.escape(name[:-4])
            # Small figures are shown at least 480 px wide, pixels kept sharp by the CSS.
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
    f = page.facts
    title = f"hourglass run: {f.model} on {f.data_name}"
    rows = dict(metric_rows(page.metrics))
    summary = (f"<p>Model <b>{html.escape(str(f.model))}</b>"
               + (f" (preset {html.escape(str(f.preset))})" if f.preset else "")
               + f", latent dim {_fmt(f.latent_dim)}, data <b>"
               f"{html.escape(str(f.data_name))}</b> ({_fmt(f.n_train)} train, {_fmt(f.n_val)} "
               f"validation, {_fmt(f.n_test)} test examples, shape {html.escape(str(f.input_shape))})"
               + (f"; class {f.exclude_class} left out of training" if f.exclude_class is not None else "")
               + f". Created {html.escape(str(f.created or ''))}"
               + (f", directory <code>{html.escape(str(page.path))}</code>" if page.path else "") + ".</p>")
    body = (f"<h1>{html.escape(title)}</h1>\n{summary}\n{_warnings_html([page])}\n<h2>Metrics</h2>\n"
            f"{_metrics_table(list(rows), [rows], ['value'])}\n<h2>Figures</h2>\n{_figures_html(page)}\n"
            f"<h2>Config</h2>\n{_config_tables(page)}")
    return _page(title, body)


def comparison_html(pages: Sequence[RunPage]) -> str:
    names = [p.label for p in pages]
    rows_by_run = [dict(metric_rows(p.metrics)) for p in pages]
    keys: list[str] = []
    for rows in rows_by_run:
        keys += [k for k in rows if k not in keys]
    head = "".join(f"<th>{html.escape(n)}</th>" for n in names)
    cfg_keys: list[str] = []
    for p in pages:
        cfg_keys += [k for k in p.settings.get("config", {}) if k not in cfg_keys]
    cfg_rows = "".join(
        f"<tr><td>{html.escape(k)}</td>" + "".join(f"<td>{_fmt(p.settings.get('config', {}).get(k, ''))}</td>"
                                                     for p in pages) + "</tr>" for k in cfg_keys)
    sections = "".join(f'<div class="run"><h2>{html.escape(p.label)}</h2>{_figures_html(p)}</div>' for p in pages)
    title = f"hourglass: {len(pages)} runs compared"
    body = (f"<h1>{html.escape(title)}</h1>\n{_warnings_html(pages)}\n<h2>Metrics</h2>\n"
            f"{_metrics_table(keys, rows_by_run, names)}\n<h2>Loss curves</h2>\n{_overlay_losses(pages)}\n"
            f"<h2>Config</h2>\n<table id=\"config\"><thead><tr>"
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
