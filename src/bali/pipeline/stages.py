"""How `bali run` calls each stage: thin adapters from the pipeline's directories to stage functions."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bali.artifacts import write_json_atomic
from bali.errors import BadInputError
from bali.pipeline.layout import PipelineLayout
from bali.train.rundir import CONFIG_FILE, FINAL_DIR, RESULTS

if TYPE_CHECKING:
    from bali.evaluate.mentions import Mention

IN_CORPUS, NOT_IN_CORPUS = "concept in corpus", "concept not in corpus"
MODEL_ROLES = {
    "base": "the base model the training run started from (model.name)",
    "bali": "the BALI-trained model: the training run's Hugging Face export",
}


def run_kg(p: PipelineLayout, fresh: bool) -> dict[str, Any]:
    from bali.kg.build import build_kg

    return build_kg(p.config.kg, p.kg_dir, overwrite=True)


def run_corpus(p: PipelineLayout, fresh: bool) -> dict[str, Any]:
    from bali.corpus.link import link_corpus

    return link_corpus(p.kg_dir, p.corpus_dir, p.config.corpus, overwrite=True)


def run_data(p: PipelineLayout, fresh: bool) -> dict[str, Any]:
    from bali.data.encode import build_dataset

    return build_dataset(
        p.kg_dir, p.corpus_dir, p.config.model.name, p.data_dir, p.config.data, overwrite=True
    )


def run_train(p: PipelineLayout, fresh: bool) -> dict[str, Any]:
    """Resume an interrupted run unless the stage is forced (then start over)."""
    from bali.train.trainer import train

    resume = not fresh and (p.run_dir / "checkpoints").exists()
    return train(p.config, p.data_dir, p.run_dir, resume=resume, overwrite=not resume)


def corpus_coverage_subsets(corpus_dir: str | Path) -> dict[str, Callable[[Mention], bool]]:
    """Held-out rows split by whether the linked corpus mentions the concept.

    Alignment only sees a concept directly when a sentence mentions it; the split shows how much of
    a change comes from concepts training saw and how much carries over to the rest of the KG.
    """
    from bali.corpus.artifact import LinkedCorpus
    from bali.evaluate.dictionary import kg_node_key

    seen = {kg_node_key(int(n)) for n in LinkedCorpus(corpus_dir).mentioned_nodes()}

    def in_corpus(mention: Mention) -> bool:
        return any(key in seen for alternative in mention.gold for key in alternative)

    return {IN_CORPUS: in_corpus, NOT_IN_CORPUS: lambda mention: not in_corpus(mention)}


def heldout_tsne_panels(
    p: PipelineLayout, models: list[str], labels: list[str], cache_dir: Path
) -> dict[str, Any] | None:
    """Held-out synonyms vs their concepts' names per model, from the evaluation's embedding cache."""
    from bali.evaluate.heldout_sample import heldout_panels

    ev = p.config.eval
    if ev.linking_format != "heldout" or ev.linking_mentions is not None:
        return None
    panels, _ = heldout_panels(
        models, labels, p.kg_dir, cache_dir, pooling=ev.pooling[0], batch_size=ev.batch_size, device=ev.device
    )
    return panels


def run_eval(p: PipelineLayout, fresh: bool) -> dict[str, Any]:
    """Zero-shot linking of the base model and the trained model under one protocol, then the report."""
    from bali.evaluate.linking import CACHE_DIRNAME, evaluate_linking
    from bali.evaluate.report import write_report
    from bali.export import write_model_card

    ev = p.config.eval
    models, labels = [p.config.model.name, str(p.run_dir / FINAL_DIR)], list(MODEL_ROLES)
    cache_dir = p.eval_dir.parent / CACHE_DIRNAME
    subsets = None
    if ev.linking_format == "heldout":
        dictionary, mentions = str(p.kg_dir), ev.linking_mentions or str(p.kg_dir)
        subsets = corpus_coverage_subsets(p.corpus_dir)
    else:
        dictionary, mentions = ev.linking_dictionary or str(p.kg_dir), ev.linking_mentions
    if ev.linking_train_mentions:
        from bali.evaluate.seen import seen_subsets, training_gold

        subsets = {**(subsets or {}), **seen_subsets(training_gold(ev.linking_train_mentions))}
    if mentions is None:
        raise BadInputError("eval.linking_mentions is required unless eval.linking_format is 'heldout'")
    if dictionary != str(p.kg_dir):  # a separate vocabulary: how much of it the aligned KG covers
        from bali.evaluate.linking import as_mention_sets
        from bali.evaluate.seen import kg_coverage_subsets

        sets = as_mention_sets(mentions, ev.linking_format, ev.entity_types)
        subsets = {**(subsets or {}), **kg_coverage_subsets(p.kg_dir, sets)}
    results = evaluate_linking(
        models=models,
        model_labels=labels,
        dictionary=dictionary,
        mentions=mentions,
        mention_format=ev.linking_format,
        pooling=list(ev.pooling),
        entity_types=list(ev.entity_types),
        batch_size=ev.batch_size,
        device=ev.device,
        out_dir=p.eval_dir,
        overwrite=True,
        subsets=subsets,
        in_context=ev.linking_in_context,
        max_mentions=ev.heldout_max_concepts if ev.linking_format == "heldout" else None,
        seed=ev.seed,
        cache_dir=cache_dir,
    )
    metrics = p.run_dir / "metrics.jsonl"
    report = write_report(
        p.eval_dir,
        linking_results=results,
        metrics_path=metrics if metrics.exists() else None,
        title="BALI demo: base vs BALI-trained model",
        heldout_tsne=heldout_tsne_panels(p, models, labels, cache_dir),
        roles=MODEL_ROLES,
        run_config=p.run_dir / CONFIG_FILE,
    )
    first = results["rows"][0]
    rows = [r for r in results["rows"] if r["protocol"] == first["protocol"] and r["subset"] == "all"]
    # The model card of the export lists the evaluation results found in the run directory.
    card_results = {
        "held-out-synonym linking" if ev.linking_format == "heldout" else "linking": {
            "protocol": results["protocol"],
            "rows": rows,
        }
    }
    write_json_atomic(p.run_dir / RESULTS, card_results)
    write_model_card(p.run_dir, p.run_dir / FINAL_DIR)
    return {"report": str(report), "rows": rows}


RUNNERS: dict[str, Callable[[PipelineLayout, bool], dict[str, Any]]] = {
    "kg": run_kg,
    "corpus": run_corpus,
    "data": run_data,
    "train": run_train,
    "eval": run_eval,
}
