"""The claims page: ``claims.md``, ``claims.html`` (figures embedded), ``claims.json`` and
``figures/claim-NN.png``, all written from the findings by :func:`write_page`; nothing is edited by hand."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any, Sequence

from ..errors import path_access

VERDICT_MARK = {"holds": "holds", "holds with a caveat": "holds, with a caveat",
                "does not hold here": "does not hold here", "error": "experiment failed"}
# the tally's words, singular and plural: "1 holds", "3 hold", "2 do not hold here"
TALLY = {"holds": ("holds", "hold"), "holds with a caveat": ("holds with a caveat", "hold with a caveat"),
         "does not hold here": ("does not hold here", "do not hold here"),
         "error": ("experiment failed", "experiments failed")}
VERDICT_CLASS = {"holds": "yes", "holds with a caveat": "caveat", "does not hold here": "no", "error": "error"}

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222;line-height:1.45}
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:2em;border-bottom:1px solid #ddd;padding-bottom:.2em}
table{border-collapse:collapse;margin:.6em 0;font-size:.92em}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}
.verdict{display:inline-block;padding:.1em .6em;border-radius:.8em;font-weight:600;font-size:.9em}
.yes{background:#d7f0d7;color:#145214}.caveat{background:#fdf0c8;color:#6b4e00}
.no{background:#f7d4d4;color:#7a1414}.error{background:#444;color:#fff}
.statement{font-style:italic;color:#444}.meta{color:#666;font-size:.88em}
img{max-width:100%;border:1px solid #eee}
"""


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if v != v:
            return "n/a"
        a = abs(v)
        if a != 0 and (a < 1e-3 or a >= 1e5):
            return f"{v:.3g}"
        return f"{v:.4g}" if a < 10 else f"{v:,.1f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def _columns(rows: Sequence[dict[str, Any]]) -> list[str]:
    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k not in cols]
    return cols


def _md_table(rows: Sequence[dict[str, Any]]) -> str:
    cols = _columns(rows)
    out = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for r in rows:
        out.append("| " + " | ".join(_fmt(r.get(c, "")).replace("|", "\\|") for c in cols) + " |")
    return "\n".join(out)


def _html_table(rows: Sequence[dict[str, Any]]) -> str:
    cols = _columns(rows)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join(
        "<tr>" + "".join(f'<td class="{"num" if isinstance(r.get(c), (int, float)) else ""}">'
                         f"{html.escape(_fmt(r.get(c, '')))}</td>" for c in cols) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _headline(numbers: dict[str, Any], limit: int = 3) -> str:
    return "; ".join(f"{k} {_fmt(v)}" for k, v in list(numbers.items())[:limit])


def write_page(out: Path, entries: list[dict[str, Any]], meta: dict[str, Any]) -> list[Path]:
    """Write the page from ``entries`` (one per claim: number, title, statement, verdict, caveat,
    experiment, result, numbers, table, seeds, seconds, figure file or None, error) and ``meta`` (the
    run: command, data, mode, judge accuracy, versions, total seconds). Returns the files written."""
    md = _markdown(entries, meta)
    page = _html(out, entries, meta)
    record = {"meta": meta, "claims": [{k: v for k, v in e.items()} for e in entries]}
    files = [out / "claims.md", out / "claims.html", out / "claims.json"]
    with path_access(out, "write"):
        out.mkdir(parents=True, exist_ok=True)
        files[0].write_text(md, encoding="utf-8")
        files[1].write_text(page, encoding="utf-8")
        files[2].write_text(json.dumps(record, indent=1, default=str) + "\n", encoding="utf-8")
    return files


def _tally(entries: list[dict[str, Any]]) -> str:
    counts = [(sum(e["verdict"] == v for e in entries), v) for v in TALLY]
    return (f"Of {len(entries)} claims, " + ", ".join(f"{n} {TALLY[v][n != 1]}" for n, v in counts if n) + ".")


def _intro(meta: dict[str, Any]) -> list[str]:
    mode = ("a quick run (small budgets, one seed: verdicts are indicative only; the full run is the "
            "reference)" if meta["quick"] else "a full run")
    judge = (f" The independent judge (a small CNN trained on the real training images) recognises "
             f"{meta['judge_accuracy']:.1%} of the real test images." if meta.get("judge_accuracy") else "")
    return [
        f"Each claim below is paraphrased from the lecture notes hourglass implements, then tested by an "
        f"experiment with a control, on {meta['data']} ({meta['n_train']:,} training and {meta['n_test']:,} "
        f"test images), in {mode}.{judge} Generated by `{meta['command']}` on {meta['created']} in "
        f"{meta['seconds'] / 60:.1f} minutes ({meta['machine']}); do not edit by hand, run the command again. "
        f"\"a ± b\" is the mean and standard deviation (ddof 0) over the seeds listed under each claim.",
    ]


def _markdown(entries: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = ["# The lecture notes' claims, checked", "", *_intro(meta), "", _tally(entries), "",
             "| # | claim | verdict | headline | seconds |", "|---:|---|---|---|---:|"]
    for e in entries:
        lines.append(f"| {e['number']} | [{e['title']}](#claim-{e['number']}) | {VERDICT_MARK[e['verdict']]} | "
                     f"{_headline(e['numbers']).replace('|', '/')} | {e['seconds']:.0f} |")
    for e in entries:
        lines += ["", f'<a id="claim-{e["number"]}"></a>', f"## {e['number']}. {e['title']}", "",
                  f"*Claim:* {e['statement']}", "", f"**Verdict: {VERDICT_MARK[e['verdict']]}.**"
                  + (f" Caveat: {e['caveat']}" if e.get("caveat") else "")]
        if e.get("error"):
            lines += ["", f"The experiment failed: `{e['error']}`"]
        else:
            lines += ["", f"*Experiment:* {e['experiment']}", "", f"*Result:* {e['result']}"]
            if e["table"]:
                lines += ["", _md_table(e["table"])]
            if e.get("figure"):
                lines += ["", f"![claim {e['number']}]({e['figure']})"]
        lines += ["", f"Seeds: {', '.join(map(str, e['seeds'])) or 'none'}; wall time {e['seconds']:.0f} s."]
    lines += ["", "---", f"hourglass {meta['versions'].get('hourglass', '')}, "
              + ", ".join(f"{k} {v}" for k, v in meta["versions"].items() if k != "hourglass"), ""]
    return "\n".join(lines)


def _html(out: Path, entries: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    from ..report.html import data_uri

    def badge(v: str) -> str:
        return f'<span class="verdict {VERDICT_CLASS[v]}">{html.escape(VERDICT_MARK[v])}</span>'

    rows = "".join(
        f'<tr><td class="num">{e["number"]}</td><td><a href="#claim-{e["number"]}">{html.escape(e["title"])}</a>'
        f"</td><td>{badge(e['verdict'])}</td><td>{html.escape(_headline(e['numbers']))}</td>"
        f'<td class="num">{e["seconds"]:.0f}</td></tr>' for e in entries)
    parts = ["<h1>The lecture notes' claims, checked</h1>",
             *(f"<p>{_inline(p)}</p>" for p in _intro(meta)), f"<p><b>{html.escape(_tally(entries))}</b></p>",
             "<table><thead><tr><th>#</th><th>claim</th><th>verdict</th><th>headline</th><th>seconds</th></tr>"
             f"</thead><tbody>{rows}</tbody></table>"]
    for e in entries:
        parts.append(f'<h2 id="claim-{e["number"]}">{e["number"]}. {html.escape(e["title"])}</h2>')
        parts.append(f'<p class="statement">Claim: {html.escape(e["statement"])}</p>')
        parts.append(f"<p>{badge(e['verdict'])}" + (f" {html.escape(e['caveat'])}" if e.get("caveat") else "")
                     + "</p>")
        if e.get("error"):
            parts.append(f"<p>The experiment failed: <code>{html.escape(e['error'])}</code></p>")
        else:
            parts.append(f"<p><b>Experiment.</b> {_inline(e['experiment'])}</p>")
            parts.append(f"<p><b>Result.</b> {_inline(e['result'])}</p>")
            if e["table"]:
                parts.append(_html_table(e["table"]))
            if e.get("figure"):
                parts.append(f'<img alt="claim {e["number"]}" src="{data_uri(out / e["figure"])}">')
        parts.append(f'<p class="meta">Seeds: {html.escape(", ".join(map(str, e["seeds"])) or "none")}; '
                     f"wall time {e['seconds']:.0f} s.</p>")
    versions = ", ".join(f"{k} {v}" for k, v in meta["versions"].items())
    parts.append(f'<p class="meta">{html.escape(versions)}</p>')
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            "<title>hourglass: the lecture notes' claims, checked</title>"
            f"<style>{CSS}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n")


def _inline(text: str) -> str:
    """Markdown's `code` spans as <code>, everything else escaped."""
    pieces = text.split("`")
    return "".join(f"<code>{html.escape(p)}</code>" if i % 2 else html.escape(p) for i, p in enumerate(pieces))
