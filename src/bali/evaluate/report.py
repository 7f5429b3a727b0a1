"""``report.md`` with PNG plots: training curves, linking Acc@k of base vs trained, t-SNE of embeddings.

The fixed-width linking table and the paired-comparison lines are formatted here too, for the report
and the terminal alike, so that linking (which writes a report) depends on this module, not the
reverse.

The report restates protocol, data, sizes and seeds next to every number, because entity-linking and
QA numbers in this field are only comparable under the same protocol.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from bali.artifacts import atomic_output_dir, write_json_atomic
from bali.errors import BadInputError
from bali.jsonlines import read_json_objects
from bali.model.config import GEOMETRY_KEYS, LOSS_KEYS
from bali.train.rundir import CONFIG_FILE

# The run-config weight (under ``model``) that switches each logged loss component on.
LOSS_WEIGHTS = {
    "mlm_loss": "mlm_weight",
    "align_loss": "alignment_weight",
    "name_align_loss": "name_alignment_weight",
    "anchor_loss": "anchor_weight",
    "sentence_anchor_loss": "sentence_anchor_weight",
}

# (held-out synonym vectors [n, d], their concepts' name vectors [n, d], a label per pair)
Panel = tuple[np.ndarray, np.ndarray, list[str]]


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """JSON lines of a run's ``metrics.jsonl``; a malformed line is bad input with its number."""
    path = Path(path)
    if path.is_dir():
        path = path / "metrics.jsonl"
    if not path.is_file():
        raise BadInputError("training metrics not found (expected a run directory with metrics.jsonl)", path)
    return [record for _, record in read_json_objects(path)]


def read_run_config(metrics_path: str | Path) -> dict[str, Any] | None:
    """The ``config.yaml`` of the run that wrote ``metrics_path`` (it sits beside it), if any."""
    path = Path(metrics_path)
    config = (path if path.is_dir() else path.parent) / CONFIG_FILE
    if not config.is_file():
        return None
    loaded = yaml.safe_load(config.read_text(encoding="utf-8"))
    return loaded if isinstance(loaded, dict) else None


def trained_losses(records: Sequence[dict[str, Any]], run_config: dict[str, Any] | None) -> list[str]:
    """The loss keys worth a curve: the total, and each component the run trained.

    The trainer logs every component, a task that is off as a constant 0; plotting it would suggest
    a loss that was trained to 0. A component is off when its weight in the run's config is 0, or,
    without the config, when it is 0 at every logged step.
    """
    weights = (run_config or {}).get("model") or {}
    keys = []
    for key in LOSS_KEYS:
        values = [r[key] for r in records if isinstance(r.get(key), (int, float))]
        weight = weights.get(LOSS_WEIGHTS.get(key, ""), None)
        if values and (weight > 0 if weight is not None else any(v != 0 for v in values)):
            keys.append(key)
    return keys


def plot_training_curves(
    records: Sequence[dict[str, Any]], out: Path, keys: Sequence[str] | None = None
) -> Path | None:
    """Loss components (``keys``, default: every one logged) against step, with the learning rate.

    Training values are lines, validation values markers.
    """
    train = [r for r in records if r.get("split", "train") == "train" and "step" in r]
    valid = [r for r in records if r.get("split") == "validation" and "step" in r]
    keys = [k for k in (LOSS_KEYS if keys is None else keys) if any(k in r for r in train + valid)]
    if not keys:
        return None
    has_lr = any("lr" in r for r in train)
    geometry = [k for k in GEOMETRY_KEYS if any(isinstance(r.get(k), (int, float)) for r in valid)]
    panels = 1 + has_lr + bool(geometry)
    plt = _pyplot()
    fig, axes = plt.subplots(1, panels, figsize=(5.5 * panels, 4), squeeze=False)
    ax = axes[0][0]
    for i, key in enumerate(keys):
        color = f"C{i}"
        points = [(r["step"], r[key]) for r in train if isinstance(r.get(key), (int, float))]
        if points:
            ax.plot(*zip(*points, strict=True), color=color, label=f"train {key}", linewidth=1)
        points = [(r["step"], r[key]) for r in valid if isinstance(r.get(key), (int, float))]
        if points:
            ax.plot(
                *zip(*points, strict=True), color=color, marker="o", linestyle="--", label=f"validation {key}"
            )
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title("training losses")
    ax.legend(fontsize=8)
    if has_lr:
        lr = [(r["step"], r["lr"]) for r in train if isinstance(r.get("lr"), (int, float))]
        axes[0][1].plot(*zip(*lr, strict=True), color="C3")
        axes[0][1].set_xlabel("step")
        axes[0][1].set_title("learning rate")
    if geometry:
        _plot_geometry(axes[0][-1], valid, geometry)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def _plot_geometry(ax: Any, valid: Sequence[dict[str, Any]], keys: Sequence[str]) -> None:
    """Alignment and uniformity at each validation (:mod:`bali.model.geometry`): drift as it happens."""
    for i, key in enumerate(keys):
        points = [(r["step"], r[key]) for r in valid if isinstance(r.get(key), (int, float))]
        ax.plot(*zip(*points, strict=True), color=f"C{i + 4}", marker="o", label=key)
    ax.set_xlabel("step")
    ax.set_title("embedding geometry (validation)")
    ax.legend(fontsize=8)


def plot_linking(results: Sequence[dict[str, Any]], out: Path) -> Path | None:
    """Grouped bars of Acc@k (plain protocol, all mentions): one bar per model, groups = pooling x k."""
    rows = [r for res in results for r in res.get("rows", []) if r["subset"] == "all"]
    if not rows:
        return None
    ks = sorted({int(key.split("@")[1]) for r in rows for key in r if key.startswith("acc@")})
    models = list(dict.fromkeys(r["model"] for r in rows))
    groups = list(dict.fromkeys((r["pooling"], r["protocol"]) for r in rows))
    table = {(r["model"], r["pooling"], r["protocol"]): r for r in rows}
    labels = [f"{p}\n{proto}\nAcc@{k}" for p, proto in groups for k in ks]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(labels) * max(1, len(models)) / 2), 4.5))
    width = 0.8 / len(models)
    x = np.arange(len(labels))
    for i, model in enumerate(models):
        values = [
            100 * table.get((model, p, proto), {}).get(f"acc@{k}", np.nan) for p, proto in groups for k in ks
        ]
        bars = ax.bar(x + (i - (len(models) - 1) / 2) * width, values, width, label=model)
        ax.bar_label(bars, fmt="%.1f", fontsize=7)
    ax.set_xticks(x, labels, fontsize=7)
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 105)
    ax.set_title("zero-shot entity linking")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def load_embeddings(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``text`` [n, d], ``graph`` [n, d] and ``labels`` [n] from an .npz; shapes must agree."""
    path = Path(path)
    if not path.is_file():
        raise BadInputError("embeddings file not found", path)
    with np.load(path, allow_pickle=False) as data:
        missing = [k for k in ("text", "graph", "labels") if k not in data]
        if missing:
            raise BadInputError(f"the .npz lacks arrays {missing} (needs text, graph, labels)", path)
        text, graph, labels = data["text"], data["graph"], data["labels"]
    if text.ndim != 2 or text.shape != graph.shape or len(labels) != len(text):
        raise BadInputError(
            f"text {text.shape}, graph {graph.shape} and labels ({len(labels)}) must be [n, d], [n, d], [n]",
            path,
        )
    if len(text) < 3:
        raise BadInputError("need at least 3 concepts for a 2-D projection", path)
    return text.astype(np.float32), graph.astype(np.float32), labels


def plot_embeddings(path: str | Path, out: Path, max_points: int = 500, seed: int = 0) -> tuple[Path, int]:
    """t-SNE of text-side and graph-side embeddings in one space; a line joins a concept's two points."""
    from sklearn.manifold import TSNE

    text, graph, labels = load_embeddings(path)
    if len(text) > max_points:
        keep = np.sort(np.random.default_rng(seed).choice(len(text), max_points, replace=False))
        text, graph, labels = text[keep], graph[keep], labels[keep]
    n = len(text)
    both = np.concatenate([text, graph])
    both /= np.linalg.norm(both, axis=1, keepdims=True).clip(min=1e-12)
    perplexity = float(min(30.0, (2 * n - 1) / 3))
    # Exact t-SNE: at <= 2 * max_points points it is fast, and Barnes-Hut's OpenMP threads slow to a
    # crawl on a busy machine.
    xy = TSNE(
        n_components=2, perplexity=perplexity, init="pca", random_state=seed, method="exact"
    ).fit_transform(both)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 6))
    for i in range(min(n, 60)):
        ax.plot([xy[i, 0], xy[n + i, 0]], [xy[i, 1], xy[n + i, 1]], color="0.8", linewidth=0.5, zorder=1)
    ax.scatter(xy[:n, 0], xy[:n, 1], s=12, marker="o", label="text side (LM)", zorder=2)
    ax.scatter(xy[n:, 0], xy[n:, 1], s=14, marker="x", label="graph side (GNN)", zorder=2)
    for i in range(min(n, 15)):
        ax.annotate(str(labels[i])[:25], xy[i], fontsize=6)
    ax.set_title(f"t-SNE of {n} concepts (lines join a concept's two views)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out, n


def _mention_lines(m: dict[str, Any]) -> list[str]:
    """One paragraph per mention set: what was read, scored, left out, and why."""
    lines = [
        f"**Mentions{' ' + m['name'] if m.get('name') else ''}.** `{m['source']}` ({m['format']}"
        + (f", types {', '.join(m['entity_types'])}" if m["entity_types"] else "")
        + f"): {m['total']} mentions, {m['scored']} scored, {m['without_gold_id']} without a gold id (not scored), "
        f"{m['composite']} composite, {m['with_alternatives']} with alternative ids; "
        f"{m['unmapped_gold_ids']} of {m['distinct_gold_ids']} distinct gold ids are absent from the dictionary, "
        f"and {m['mentions_with_all_gold_unmapped']} mentions have no gold id in it (scored as misses).",
    ]
    if m.get("distinct_string_gold_pairs"):
        counts = ", ".join(f"{n} ({p})" for p, n in m["distinct_string_gold_pairs"].items())
        lines.append(f"Distinct (string, gold) pairs, which the paired test also counts: {counts}.")
    if m.get("abbreviations_expanded"):
        lines.append(
            f"Abbreviation expansion (Schwartz-Hearst) changed {m['abbreviations_expanded']} mentions."
        )
    return [*lines, ""]


def plot_heldout_tsne(panels: Mapping[str, Panel], out: Path, seed: int = 0) -> Path:
    """One t-SNE per model, side by side: held-out synonyms (o), their concepts' names (x), joined."""
    from sklearn.manifold import TSNE

    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 6), squeeze=False)
    for ax, (label, (synonyms, names, text)) in zip(axes[0], panels.items(), strict=True):
        n = len(synonyms)
        both = np.concatenate([synonyms, names]).astype(np.float32)
        xy = TSNE(
            n_components=2,
            perplexity=float(min(30.0, (2 * n - 1) / 3)),
            init="pca",
            random_state=seed,
            method="exact",
        ).fit_transform(both)
        for i in range(n):
            ax.plot([xy[i, 0], xy[n + i, 0]], [xy[i, 1], xy[n + i, 1]], color="0.8", linewidth=0.5, zorder=1)
        ax.scatter(xy[:n, 0], xy[:n, 1], s=12, marker="o", label="held-out synonym", zorder=2)
        ax.scatter(xy[n:, 0], xy[n:, 1], s=14, marker="x", label="its concept's name", zorder=2)
        for i in range(min(n, 12)):
            ax.annotate(text[i][:40], xy[i], fontsize=6)
        gap = float(np.mean(np.sum(synonyms * names, axis=1)))
        ax.set_title(f"{label}: {n} held-out concepts (mean cosine synonym-name {gap:.3f})", fontsize=9)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def _heldout_tsne_section(panels: Mapping[str, Panel], out: Path) -> list[str]:
    plot = plot_heldout_tsne(panels, out / "heldout_tsne.png")
    n = len(next(iter(panels.values()))[0])
    return [
        "## Held-out concepts: " + " next to ".join(panels),
        "",
        f"t-SNE (scikit-learn, exact, seed 0) of a fixed sample of {n} held-out synonyms and the first "
        "name of each one's concept, embedded by each model (concept names read from the evaluation's "
        "embedding cache); lines join a synonym to its concept. Points are projected per model, so "
        "compare the lengths of the lines and the cosine in the titles, not positions across panels.",
        "",
        f"![held-out t-SNE]({plot.name})",
        "",
    ]


def format_rows(result: dict[str, Any]) -> str:
    """A fixed-width table of the rows, for the terminal and report.md."""
    ks = result["settings"]["ks"]
    header = ["model", "benchmark", "pooling", "protocol", "subset", "n", *[f"Acc@{k}" for k in ks], "MRR"]
    lines = [header]
    for row in result["rows"]:
        lines.append(
            [
                row["model"],
                row.get("benchmark", "mentions"),
                row["pooling"],
                row["protocol"],
                row["subset"],
                str(row["mentions"]),
                *[f"{100 * row[f'acc@{k}']:.2f}" for k in ks],
                f"{100 * row['mrr']:.2f}",
            ]
        )
    widths = [max(len(r[i]) for r in lines) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in lines)


def format_paired(result: dict[str, Any]) -> list[str]:
    """One line per paired comparison, for the terminal and report.md."""
    return [
        f"{c['model']} vs {c['against']} ({c['benchmark'] + ', ' if 'benchmark' in c else ''}"
        f"{c['pooling']}, {c['protocol']}): "
        f"right where it was wrong on {c['won']} mentions, wrong where it was right on {c['lost']}; "
        f"exact McNemar p = {c['p_value']:.3g}"
        + (
            f"; over distinct (string, gold) pairs {c['distinct_won']} / {c['distinct_lost']}, "
            f"p = {c['distinct_p_value']:.3g}"
            if "distinct_won" in c
            else ""
        )
        for c in result.get("paired", [])
    ]


def _linking_section(result: dict[str, Any]) -> list[str]:
    d = result["dictionary"]
    lines = [
        "## Zero-shot entity linking",
        "",
        f"**Protocol.** {result['protocol']}",
        "",
        f"**Dictionary.** `{d['source']}`: {d['concepts']} concepts, {d['names']} names "
        f"({d['distinct_name_strings']} distinct strings), {d['ids']} ids"
        + (
            f"; {d['unrecognised_ids']} ids without a known prefix kept verbatim"
            if d["unrecognised_ids"]
            else ""
        )
        + ".",
        "",
    ]
    for m in result.get("mention_sets") or [result["mentions"]]:  # results.json before issue 12: one set
        lines += _mention_lines(m)
    s = result["settings"]
    device = s["device"] + (f" -> {s['device_used']}, {s['precision']}" if "device_used" in s else "")
    lines += [
        f"Settings: pooling {', '.join(s['pooling'])}; composites {s.get('composites', 'any')}; "
        f"max length {s['max_length']}; batch {s['batch_size']}; device {device}; "
        f"total time {result['timing']['total_seconds']:.1f} s. Deterministic (no seeds).",
        "",
    ]
    for c in result.get("cache", []):
        lines.append(
            f"- {c['model']}: dictionary embeddings {c['status']}, mention embeddings "
            f"{c.get('mentions_status', 'encoded')} (cache `{c['directory']}`)"
        )
    for r in result.get("search", {}).get("recall_vs_exact", []):
        lines.append(
            f"- {r['model']} {r['pooling']}: approximate search recall@{r['k']} against exact search "
            f"{100 * r['recall']:.1f}% on a sample of {r['queries']} mention strings"
        )
    lines += ["", "```", format_rows(result), "```", ""]
    paired = format_paired(result)
    if paired:
        lines += [
            "**Paired with the first model** (Acc@1 over all mentions and, for context-free "
            "protocols, over distinct (string, gold) pairs):",
            "",
            *[f"- {p}" for p in paired],
            "",
        ]
    return lines


def _task_section(result: dict[str, Any]) -> list[str]:
    lines = [
        f"## {'Frozen-encoder probe' if result.get('mode') == 'probe' else 'Fine-tuning'}: {result['task']}",
        "",
        f"Data `{result['data']}`; sizes {result['sizes']}; seeds {result['seeds']}; settings {result['settings']}.",
        f"Metric: {result['metric_description']}",
        "",
        "| metric | mean | std | per seed |",
        "|---|---|---|---|",
    ]
    split = result.get("split", "test")  # results written before dev-only probes existed are test
    for key, summary in result[split].items():
        per_seed = ", ".join(f"{v:.4f}" for v in summary["values"])
        lines.append(f"| {split} {key} | {summary['mean']:.4f} | {summary['std']:.4f} | {per_seed} |")
    if "baselines" in result:
        b = result["baselines"]
        lines.append(f"| baseline: majority ({b['metric']}) | {b['majority']:.4f} | | |")
        lines.append(
            f"| baseline: best constant, {b['best_constant_is']} ({b['metric']}) | {b['best_constant']:.4f} | | |"
        )
    lines.append("")
    return lines


def _training_section(metrics_path: str | Path, out: Path) -> list[str]:
    """Record count, step range and the curves of the losses the run trained (others named)."""
    records = read_metrics(metrics_path)
    keys = trained_losses(records, read_run_config(metrics_path))
    plot = plot_training_curves(records, out / "training_curves.png", keys)
    steps = [r["step"] for r in records if "step" in r]
    off = [k for k in LOSS_KEYS if k not in keys and any(k in r for r in records)]
    lines = [
        "## Training",
        "",
        f"`{metrics_path}`: {len(records)} records"
        + (f", steps {min(steps)}-{max(steps)}" if steps else "")
        + ".",
        "",
    ]
    if off:
        lines += [f"Not plotted (weight 0, not trained): {', '.join(off)}.", ""]
    if plot is not None:
        lines += [f"![training curves]({plot.name})", ""]
    return lines


def _models_section(
    linking_results: Sequence[dict[str, Any]],
    roles: Mapping[str, str] | None,
    run_config: str | Path | None,
    out: Path,
) -> list[str]:
    """Which directory each row label stands for, in which role, and the config that trained them."""
    paths = {
        r["model"]: r.get("model_path", r["model"]) for res in linking_results for r in res.get("rows", [])
    }
    if not paths:
        return []
    first = next(iter(paths))
    lines = ["## Models", "", "| model | role | path |", "|---|---|---|"]
    for label, path in paths.items():
        role = (roles or {}).get(label) or (
            "reference: every other model is paired with it" if label == first else ""
        )
        lines.append(f"| {label} | {role} | `{path}` |")
    if run_config is not None:
        link = os.path.relpath(run_config, out)
        lines += ["", f"Training configuration: [`{run_config}`]({link})."]
    return [*lines, ""]


def write_report(
    out_dir: str | Path,
    linking_results: dict[str, Any] | Sequence[dict[str, Any]] | None = None,
    metrics_path: str | Path | None = None,
    embeddings_path: str | Path | None = None,
    task_results: Sequence[dict[str, Any]] | None = None,
    title: str = "BALI evaluation",
    heldout_tsne: Mapping[str, Panel] | None = None,
    roles: Mapping[str, str] | None = None,
    run_config: str | Path | None = None,
) -> Path:
    """Write ``report.md`` and its PNGs into ``out_dir`` (created if needed); returns the report path.

    ``roles`` describes each model label (``{"bali": "trained by BALI"}``) and ``run_config`` is
    the training run's ``config.yaml``, linked so a reader finds what produced the numbers.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if isinstance(linking_results, dict):
        linking_results = [linking_results]
    linking_results = list(linking_results or [])
    lines = [f"# {title}", "", *_models_section(linking_results, roles, run_config, out)]
    if metrics_path is not None:
        lines += _training_section(metrics_path, out)
    if linking_results:
        plot = plot_linking(linking_results, out / "linking_acc.png")
        if plot is not None:
            lines += [f"![linking accuracy]({plot.name})", ""]
        for result in linking_results:
            lines += _linking_section(result)
    if heldout_tsne:
        lines += _heldout_tsne_section(heldout_tsne, out)
    for result in task_results or []:
        lines += _task_section(result)
    if embeddings_path is not None:
        plot, n = plot_embeddings(embeddings_path, out / "embeddings_tsne.png")
        lines += [
            "## Text-side vs graph-side embeddings",
            "",
            f"t-SNE (scikit-learn, seed 0) of {n} concepts from `{embeddings_path}`.",
            "",
            f"![t-SNE]({plot.name})",
            "",
        ]
    path = out / "report.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def write_task_outputs(out_dir: str | Path, result: dict[str, Any], title: str, overwrite: bool) -> None:
    """One task's ``results.json`` and ``report.md``, written together into ``out_dir`` atomically."""
    with atomic_output_dir(out_dir, overwrite=overwrite) as tmp:
        write_json_atomic(tmp / "results.json", result)
        write_report(tmp, task_results=[result], title=title)
