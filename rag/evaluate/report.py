"""Run outputs: results.json (all metrics and per-question rows), report.html (tables and plots), and
the comparison of two runs.

Plots (matplotlib, embedded as PNG): the hit@k curve, support-score distributions of supported vs
unsupported sentences (QAGS: by human label), and the refusal trade-off as the relevance gate moves.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

import numpy as np

RESULTS = "results.json"
REPORT = "report.html"


def write_run(out_dir: Path, results: dict) -> tuple[Path, Path]:
    """Write results.json and report.html; return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    results_path = out_dir / RESULTS
    results_path.write_text(json.dumps(results, indent=1, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    report_path = out_dir / REPORT
    report_path.write_text(render_html(results), encoding="utf-8")
    return results_path, report_path


def flatten(metrics: dict, prefix: str = "") -> dict[str, float]:
    """Scalar metrics as {"retrieval.hit@5": 0.8, ...}; a {"value", "count"} pair counts as its value."""
    flat: dict[str, float] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and "value" in value and "count" in value:
            if value["value"] is not None:
                flat[name] = value["value"]
        elif isinstance(value, dict):
            flat.update(flatten(value, name + "."))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            flat[name] = value
    return flat


def compare(current: dict, baseline: dict) -> dict[str, dict]:
    """Per data set, per metric: baseline, current and delta, for metrics both runs have."""
    deltas: dict[str, dict] = {}
    for dataset, result in current["datasets"].items():
        if dataset not in baseline.get("datasets", {}):
            continue
        now, before = flatten(result["metrics"]), flatten(baseline["datasets"][dataset]["metrics"])
        deltas[dataset] = {name: {"baseline": before[name], "current": value, "delta": round(value - before[name], 4)}
                           for name, value in now.items() if name in before}
    return deltas


def format_comparison(deltas: dict[str, dict]) -> str:
    """Plain-text table of a comparison."""
    lines = []
    for dataset, table in deltas.items():
        lines.append(f"{dataset}:")
        for name, row in table.items():
            if row["delta"] or not name.startswith("latency"):
                lines.append(f"  {name:<45} {row['baseline']:>10.4g} -> {row['current']:<10.4g} ({row['delta']:+.4g})")
    return "\n".join(lines) or "no data set in common"


# -- HTML ----------------------------------------------------------------------------------------
def render_html(results: dict) -> str:
    parts = [f"<h1>Evaluation run {html.escape(results.get('started_at', ''))}</h1>",
             f"<p>{html.escape(json.dumps(results.get('settings', {})))}</p>"]
    for dataset, result in results["datasets"].items():
        parts.append(f"<h2>{html.escape(dataset)}</h2>")
        parts.append(f"<p>judge: {html.escape(str(result.get('judge')))}; llm: {html.escape(json.dumps(result.get('llm')))}; "
                     f"index: {html.escape(json.dumps(result.get('index')))}</p>")
        parts.append(metrics_table(flatten(result["metrics"]), result["metrics"]))
        for title, image in plots(dataset, result):
            parts.append(f"<h3>{html.escape(title)}</h3><img alt='{html.escape(title)}' src='data:image/png;base64,{image}'>")
        if result.get("errors"):
            parts.append("<h3>Errors</h3><ul>" + "".join(
                f"<li>{html.escape(str(e.get('id')))}: {html.escape(e['error'])}</li>" for e in result["errors"]) + "</ul>")
    if results.get("comparison"):
        parts.append("<h2>Compared with " + html.escape(results.get("compared_with", "")) + "</h2><pre>"
                     + html.escape(format_comparison(results["comparison"])) + "</pre>")
    style = "body{font-family:sans-serif;max-width:1000px;margin:auto}td,th{padding:2px 10px;text-align:left}"
    return f"<!doctype html><html><head><meta charset='utf-8'><title>Evaluation</title><style>{style}</style></head><body>{''.join(parts)}</body></html>\n"


def metrics_table(flat: dict[str, float], nested: dict) -> str:
    counts = {}

    def walk(node, prefix=""):
        for key, value in node.items():
            if isinstance(value, dict) and "count" in value:
                counts[f"{prefix}{key}"] = value["count"]
            if isinstance(value, dict):
                walk(value, f"{prefix}{key}.")

    walk(nested)
    rows = "".join(f"<tr><td>{html.escape(name)}</td><td>{value:.4g}</td><td>{counts.get(name, '')}</td></tr>"
                   for name, value in flat.items())
    return f"<table><tr><th>metric</th><th>value</th><th>count</th></tr>{rows}</table>"


def plots(dataset: str, result: dict) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = []
    rows = result.get("rows", [])
    metrics = result["metrics"]
    if metrics.get("retrieval", {}).get("questions_with_gold"):
        ks = [k for k in (1, 3, 5, 10) if metrics["retrieval"].get(f"hit@{k}", {}).get("value") is not None]
        figure, axis = plt.subplots(figsize=(5, 3))
        axis.plot(ks, [metrics["retrieval"][f"hit@{k}"]["value"] for k in ks], marker="o")
        axis.set(xlabel="k", ylabel="hit@k", ylim=(0, 1), title=f"{dataset}: hit@k")
        out.append(("hit@k", _png(figure, plt)))
    if dataset == "qags":
        supported = [s["score"] for r in rows for s in r["sentences"] if s["score"] is not None and s["human_yes_share"] > 0.5]
        unsupported = [s["score"] for r in rows for s in r["sentences"] if s["score"] is not None and s["human_yes_share"] <= 0.5]
        labels = ("human: supported", "human: not supported")
    else:
        supported = [s["score"] for r in rows for s in r.get("sentences", []) if s["supported"]]
        unsupported = [s["score"] for r in rows for s in r.get("sentences", []) if not s["supported"]]
        labels = ("supported", "unsupported")
    if supported or unsupported:
        figure, axis = plt.subplots(figsize=(5, 3))
        bins = np.linspace(0, 1, 21)
        axis.hist([supported, unsupported], bins=bins, label=labels, alpha=0.8)
        axis.set(xlabel="support score", ylabel="sentences", title=f"{dataset}: support scores")
        axis.legend()
        out.append(("support-score distributions", _png(figure, plt)))
    gated = [r for r in rows if isinstance(r.get("answerable"), bool) and r.get("answerable_probability") is not None]
    if gated and any(not r["answerable"] for r in gated) and any(r["answerable"] for r in gated):
        thresholds = np.linspace(0.0, 1.0, 41)
        answerable = [r["answerable_probability"] for r in gated if r["answerable"]]
        unanswerable = [r["answerable_probability"] for r in gated if not r["answerable"]]
        figure, axis = plt.subplots(figsize=(5, 3))
        axis.plot(thresholds, [np.mean([v < t for v in answerable]) for t in thresholds], label="false refusals (answerable)")
        axis.plot(thresholds, [np.mean([v < t for v in unanswerable]) for t in thresholds], label="refusals of unanswerable")
        axis.set(xlabel="answerability threshold (answer.answerable_threshold)", ylabel="share refused",
                 title=f"{dataset}: refusal trade-off")
        axis.legend(fontsize=7)
        out.append(("refusal threshold trade-off", _png(figure, plt)))
    return out


def _png(figure, plt) -> str:
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=90)
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode()
