"""`bali run`: stage order, skipping what is up to date, `--from`, presets."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from bali.artifacts import atomic_output_dir, make_manifest, write_json_atomic
from bali.config import load_config
from bali.corpus.artifact import CorpusWriter, LinkedCorpus
from bali.errors import BadInputError
from bali.evaluate.dictionary import kg_node_key
from bali.evaluate.mentions import Mention
from bali.kg.graph import Relation
from bali.pipeline import stages as stage_module
from bali.pipeline.cli import demo_config_path
from bali.pipeline.run import STAGES, Pipeline
from tiny_kg import write_literal_kg

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def fake_runners(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Replace every stage with a fake that writes its done marker and records the call."""
    calls: list[str] = []

    def make(stage: str) -> Any:
        def runner(p: Pipeline, fresh: bool) -> dict[str, Any]:
            calls.append(stage)
            plan = p.plan(stage)
            marker = plan.output / plan.done_marker
            marker.parent.mkdir(parents=True, exist_ok=True)
            write_json_atomic(marker, make_manifest(stage, {}, {"n": len(calls)}, {}))
            return {"fresh": fresh}

        return runner

    monkeypatch.setattr(stage_module, "RUNNERS", {s: make(s) for s in STAGES})
    return calls


def _pipeline(tmp_path: Path, *overrides: str) -> Pipeline:
    return Pipeline(load_config(None, [f"out_dir={tmp_path / 'out'}", *overrides]))


def test_runs_all_stages_in_order_then_skips(tmp_path: Path, fake_runners: list[str]) -> None:
    report = _pipeline(tmp_path).run(progress=lambda _: None)
    assert fake_runners == list(STAGES)
    assert all(r["status"] == "ran" for r in report["stages"].values())
    report = _pipeline(tmp_path).run(progress=lambda _: None)
    assert fake_runners == list(STAGES)  # nothing ran again
    assert all(r["status"] == "skipped" for r in report["stages"].values())


def test_changed_setting_reruns_that_stage_and_downstream(tmp_path: Path, fake_runners: list[str]) -> None:
    _pipeline(tmp_path).run(progress=lambda _: None)
    fake_runners.clear()
    _pipeline(tmp_path, "data.neighbours=5").run(progress=lambda _: None)
    # data reran (new settings), which changed its manifest, so train and eval reran too
    assert fake_runners == ["data", "train", "eval"]


def test_from_forces_stage_and_later(tmp_path: Path, fake_runners: list[str]) -> None:
    _pipeline(tmp_path).run(progress=lambda _: None)
    fake_runners.clear()
    _pipeline(tmp_path).run(force_from="train", progress=lambda _: None)
    assert fake_runners == ["train", "eval"]


def test_deleted_artefact_is_rebuilt(tmp_path: Path, fake_runners: list[str]) -> None:
    pipeline = _pipeline(tmp_path)
    pipeline.run(progress=lambda _: None)
    fake_runners.clear()
    (pipeline.corpus_dir / "manifest.json").unlink()
    pipeline.run(progress=lambda _: None)
    assert fake_runners == ["corpus", "data", "train", "eval"]


def test_edited_dictionary_concepts_file_rebuilds_the_kg(tmp_path: Path, fake_runners: list[str]) -> None:
    """The KG's inputs include ``kg.dictionary_concepts``: editing that file reruns every stage."""
    dictionary = tmp_path / "medic.tsv"
    dictionary.write_text("MESH:D000001||Fever\n", encoding="utf-8")
    setting = f"kg.dictionary_concepts={dictionary}"
    _pipeline(tmp_path, setting).run(progress=lambda _: None)
    fake_runners.clear()
    _pipeline(tmp_path, setting).run(progress=lambda _: None)
    assert fake_runners == []
    dictionary.write_text("MESH:D000001||Fever|Pyrexia\n", encoding="utf-8")
    _pipeline(tmp_path, setting).run(progress=lambda _: None)
    assert fake_runners == list(STAGES)


def test_unknown_from_stage_is_bad_input(tmp_path: Path, fake_runners: list[str]) -> None:
    with pytest.raises(BadInputError, match="--from"):
        _pipeline(tmp_path).run(force_from="nope", progress=lambda _: None)
    assert fake_runners == []


def test_cli_run_with_set_and_from(
    tmp_path: Path, fake_runners: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    from bali.cli import main

    config = tmp_path / "c.yaml"
    config.write_text(f"out_dir: {tmp_path / 'out'}\n")
    assert main(["run", str(config), "--set", "train.max_steps=3"]) == 0
    assert "5 stage(s) ran" in capsys.readouterr().out
    assert main(["run", str(config), "--set", "train.max_steps=3", "--from", "eval"]) == 0
    assert "1 stage(s) ran" in capsys.readouterr().out
    assert main(["run", str(config), "--set", "train.nope=3"]) == 2


def test_cli_run_until_stops_after_that_stage(
    tmp_path: Path, fake_runners: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """`--until data` prepares the data once before a multi-GPU launch, and trains nothing."""
    from bali.cli import main

    config = tmp_path / "c.yaml"
    config.write_text(f"out_dir: {tmp_path / 'out'}\n")
    assert main(["run", str(config), "--until", "data"]) == 0
    assert fake_runners == ["kg", "corpus", "data"]
    assert "3 stage(s) ran, 0 up to date" in capsys.readouterr().out


@pytest.mark.parametrize(
    "preset",
    sorted(
        p.relative_to(REPO / "configs").as_posix()
        for p in (REPO / "configs").rglob("*.yaml")
        if "accelerate" not in p.parts
    ),
)
def test_presets_validate(preset: str) -> None:
    config = load_config(REPO / "configs" / preset)
    assert config.model.temperature > 0


def test_paper_presets_follow_the_published_settings() -> None:
    for name in ("pubmedbert-gat", "biolinkbert-base-gat", "biolinkbert-large-linear"):
        cfg = load_config(REPO / "configs" / "paper" / f"{name}.yaml")
        assert cfg.train.batch_size == 256 and cfg.train.epochs == 10
        assert (cfg.train.lr_lm, cfg.train.lr_other) == (2e-5, 1e-4)
        assert cfg.data.max_length == 128 and cfg.data.name_max_length == 32 and cfg.data.neighbours == 3
        assert cfg.model.temperature == 0.07 and cfg.kg.source == "umls"
    assert load_config(REPO / "configs/paper/pubmedbert-gat.yaml").model.gnn_layers == 5


def test_demo_preset_is_the_shipped_one() -> None:
    assert (REPO / "configs" / "demo.yaml").resolve() == demo_config_path().resolve()
    cfg = load_config(demo_config_path())
    assert cfg.kg.source == "builtin" and cfg.model.name == "builtin" and cfg.train.max_steps


def test_heldout_rows_are_split_by_corpus_coverage(tmp_path: Path) -> None:
    p = _pipeline(tmp_path)
    with atomic_output_dir(p.corpus_dir) as tmp:
        with CorpusWriter(tmp) as writer:
            writer.add("d0", 0, "Aspirin eases headache.", [(0, 7, [0], "dict"), (14, 22, [2, 5], "dict")])
        write_json_atomic(tmp / "manifest.json", make_manifest("corpus", {}, {}, {"sentences": 1}))
    assert LinkedCorpus(p.corpus_dir).mentioned_nodes().tolist() == [0, 2, 5]
    subsets = stage_module.corpus_coverage_subsets(p.corpus_dir)

    def heldout(node: int) -> Mention:
        return Mention(f"C{node}", 0, 0, "a synonym", "heldout", ((kg_node_key(node),),), False, "heldout", 2)

    assert [subsets[stage_module.IN_CORPUS](heldout(n)) for n in (0, 1, 5)] == [True, False, True]
    assert [subsets[stage_module.NOT_IN_CORPUS](heldout(n)) for n in (0, 1, 5)] == [False, True, False]


def _eval_call(p: Pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The keyword arguments the eval stage hands to `evaluate_linking` (faked, with the report)."""
    import bali.evaluate.linking
    import bali.evaluate.report
    import bali.export

    monkeypatch.setattr(stage_module, "heldout_tsne_panels", lambda *a: None)
    seen: dict[str, Any] = {}

    def fake_linking(**kwargs: Any) -> dict[str, Any]:
        seen.update(kwargs)
        return {"protocol": "p", "rows": [{"protocol": "p", "subset": "all"}]}

    monkeypatch.setattr(bali.evaluate.linking, "evaluate_linking", fake_linking)
    monkeypatch.setattr(bali.evaluate.report, "write_report", lambda *a, **k: tmp_path / "report.md")
    monkeypatch.setattr(bali.export, "write_model_card", lambda *a, **k: None)
    p.run_dir.mkdir(parents=True)
    stage_module.run_eval(p, fresh=True)
    return seen


def test_eval_stage_samples_heldout_concepts_as_configured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`eval.heldout_max_concepts` and `eval.seed` reach the linking evaluation (they were ignored),
    `eval.linking_train_mentions` adds the seen / unseen rows and `eval.linking_in_context` the
    in-context protocol."""
    from bali.evaluate.seen import SEEN, UNSEEN, UNSEEN_TAUGHT, UNSEEN_UNTAUGHT

    train = tmp_path / "train.PubTator.txt"
    train.write_text("9|t|Fever.\n9|a|x\n9\t0\t5\tFever\tDisease\tD005334\n\n")
    p = _pipeline(
        tmp_path,
        "eval.heldout_max_concepts=7",
        "eval.seed=3",
        f"eval.linking_train_mentions=[{train}]",
        "eval.linking_in_context=true",
    )
    monkeypatch.setattr(stage_module, "corpus_coverage_subsets", lambda corpus: None)
    seen = _eval_call(p, tmp_path, monkeypatch)
    assert seen["max_mentions"] == 7 and seen["seed"] == 3 and seen["in_context"] is True
    assert set(seen["subsets"]) == {SEEN, UNSEEN, UNSEEN_TAUGHT, UNSEEN_UNTAUGHT}
    fever = Mention("d", 0, 5, "fever", "Disease", (("D005334",),), False, "t", 1)
    assert seen["subsets"][SEEN](fever) and not seen["subsets"][UNSEEN](fever)
    pyrexia = dataclasses.replace(fever, text="pyrexia", gold=(("MESH:D005334",),))  # ids as read
    assert seen["subsets"][UNSEEN_TAUGHT](pyrexia) and not seen["subsets"][UNSEEN_UNTAUGHT](pyrexia)


def test_eval_against_a_separate_dictionary_splits_rows_by_the_kgs_coverage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With its own vocabulary (MEDIC) the eval stage adds rows for gold concepts with and without a
    node in the run's KG; the held-out protocol, which searches the KG itself, does not."""
    from bali.evaluate.seen import IN_KG, NOT_IN_KG

    mentions, medic = tmp_path / "dev.PubTator.txt", tmp_path / "medic.txt"
    mentions.write_text(
        "1|t|Fever, fits.\n1|a|x\n1\t0\t5\tFever\tDisease\tD005334\n1\t7\t11\tfits\tDisease\tD012640\n\n"
    )
    medic.write_text("D005334||Fever\nD012640||Seizures|fits\n")
    p = _pipeline(
        tmp_path,
        "eval.linking_format=pubtator",
        f"eval.linking_mentions={mentions}",
        f"eval.linking_dictionary={medic}",
    )
    kg = {0: ["pyrexia"], 1: ["seizure"]}
    write_literal_kg(p.kg_dir, kg, [(0, 1, 0)], [Relation("is_a")], xrefs={1: ["MSH:D012640"]})
    subsets = _eval_call(p, tmp_path, monkeypatch)["subsets"]
    assert set(subsets) == {IN_KG, NOT_IN_KG}
    fever = Mention("d", 0, 5, "fever", "Disease", (("MESH:D005334",),), False, "t", 1)
    node = dataclasses.replace(fever, gold=(("MESH:D005334",), ("MESH:D012640",)))  # a node for one
    assert [subsets[IN_KG](m) for m in (fever, node)] == [False, True]
    assert [subsets[NOT_IN_KG](m) for m in (fever, node)] == [True, False]
    monkeypatch.setattr(stage_module, "corpus_coverage_subsets", lambda corpus: None)
    heldout = _eval_call(_pipeline(tmp_path / "heldout"), tmp_path, monkeypatch)["subsets"]
    assert not set(heldout or {}) & {IN_KG, NOT_IN_KG}


def test_demo_prints_base_and_bali_rows_and_their_pairing(
    tmp_path: Path, fake_runners: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    from bali.cli import main

    fake_eval = stage_module.RUNNERS["eval"]
    row = {"protocol": "zero-shot", "pooling": "mean", "acc@1": 0.5, "acc@5": 0.7, "mrr": 0.6, "mentions": 10}
    results = {
        "rows": [{**row, "model": m, "subset": s} for m in ("base", "bali") for s in ("all", "no-composite")],
        "paired": [
            {"model": "bali", "against": "base", "pooling": "mean", "protocol": "zero-shot"}
            | {"won": 3, "lost": 1, "p_value": 0.625}
        ],
    }

    def eval_runner(p: Pipeline, fresh: bool) -> dict[str, Any]:
        report = fake_eval(p, fresh)  # its done marker is results.json: overwrite it with results
        write_json_atomic(p.plan("eval").output / "results.json", results)
        return report

    stage_module.RUNNERS["eval"] = eval_runner
    assert main(["demo", "--out", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    assert fake_runners == list(STAGES)
    table = [line.split() for line in out.splitlines() if line.split()[2:3] == ["mean"]]
    assert [t[:2] for t in table] == [["base", "all"], ["bali", "all"]]  # no-composite rows left out
    assert "bali vs base (mean, zero-shot): right where it was wrong on 3 mentions" in out
    assert "p = 0.625" in out and str(tmp_path / "demo" / "eval" / "report.md") in out
