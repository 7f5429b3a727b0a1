"""Tiny fixtures for the evaluation tests, written on the fly (no shared data, no network)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from bali.artifacts import atomic_output_dir, make_manifest, write_json_atomic

MEDIC = """\
D001819||Bluetongue|Blue Tongue
C567755|613097||Tooth Agenesis, Selective, 6|STHAG6
D003920||Diabetes Mellitus|diabetes
D006333||Heart Failure|cardiac failure|HF
C||Diseases
"""

PUBTATOR = """\
1|t|Heart failure (HF) in diabetes.
1|a|Patients with HF and diabetes mellitus had tooth agenesis.
1\t0\t13\tHeart failure\tDisease\tD006333
1\t15\t17\tHF\tDisease\tMESH:D006333
1\t22\t30\tdiabetes\tDisease\tD003920|D999999
1\t46\t60\theart failure and diabetes\tDisease\tD006333|D003920\theart failure|diabetes
1\t80\t86\tdunno\tDisease\t-1
1\t0\t5\tHeart\tChemical\tD000001
1\tCID\tD000001\tD006333

"""

BIOSYN = """\
1||0|13||Disease||Heart failure||D006333
1||22|30||Disease||diabetes||MESH:D003920|D999999
1||40|50||Disease||blue tongue+HF||D001819+D006333
1||50|60||Chemical||aspirin||D001241
"""


@pytest.fixture
def medic_file(tmp_path: Path) -> Path:
    path = tmp_path / "medic.txt"
    path.write_text(MEDIC)
    return path


@pytest.fixture
def pubtator_file(tmp_path: Path) -> Path:
    path = tmp_path / "test.PubTator.txt"
    path.write_text(PUBTATOR)
    return path


@pytest.fixture
def biosyn_file(tmp_path: Path) -> Path:
    path = tmp_path / "test.concept"
    path.write_text(BIOSYN)
    return path


@pytest.fixture
def tiny_kg(tmp_path: Path) -> Path:
    """A 3-node KG written with the KG stage's writer, synonyms held out: two test, one dev."""
    from bali.kg.graph import Relation, write_kg

    out = tmp_path / "kg"
    concepts = pa.table(
        {
            "source_id": ["HP:0001250", "DOID:9352", "HP:0001945"],
            "preferred_name": ["Seizure", "Diabetes", "Fever"],
        }
    )
    with atomic_output_dir(out) as tmp:
        counts = write_kg(
            tmp,
            concepts=concepts,
            name_node_ids=np.array([0, 0, 1, 1, 2]),
            names=["Seizure", "Epileptic fit", "Diabetes", "diabetes mellitus", "Fever"],
            edges=(np.array([0]), np.array([1]), np.array([0])),
            relations=[Relation("is_a")],
            xrefs=pa.table({"key": ["MSH:D012640", "D003920"], "node_id": [0, 1], "preferred": [True, True]}),
        )
        (tmp / "heldout_synonyms.tsv").write_text(
            "node_id\tsource_id\tname\n0\tHP:0001250\tconvulsion\n2\tHP:0001945\tpyrexia\n"
        )
        (tmp / "heldout_synonyms.dev.tsv").write_text(
            "node_id\tsource_id\tname\n1\tDOID:9352\tsugar disease\n"
        )
        write_json_atomic(tmp / "manifest.json", make_manifest("kg", {}, {}, counts))
    return out


def _write(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)
    return directory


def _hoc_row(doc: str, sent: int, present: set[int]) -> str:
    labels = ",".join(f"{k}_{int(k in present)}" for k in range(10))
    return f"{labels}\tsentence {sent} of {doc} about cancer\t{doc}_s{sent}\n"


@pytest.fixture
def task_dirs(tmp_path: Path) -> dict[str, Path]:
    """Every task format with 8 to 12 tiny examples per split, written on the fly."""
    header = "labels\tsentence\tindex\n"
    hoc = header + "".join(
        _hoc_row(f"{100 + d}", s, {d % 3} if d % 2 else set()) for d in range(4) for s in range(2)
    )
    gad = "index\tsentence\tlabel\n" + "".join(
        f"{i}\t@GENE$ variant {'causes' if i % 2 else 'is unrelated to'} @DISEASE$ .\t{i % 2}\n"
        for i in range(8)
    )
    ddi = "".join(
        f"DDI-d{i}.s0.p0\t@DRUG$ increases @DRUG$ level {i}\t{['DDI-false', 'DDI-effect'][i % 2]}\n"
        for i in range(8)
    )
    chemprot = "".join(
        f"{i}.T1.T2\t@CHEMICAL$ inhibits @GENE$ {i}\t{['false', 'CPR:4'][i % 2]}\n" for i in range(8)
    )
    biosses = "pair_id\tsent1\tsent2\tscore\n" + "".join(
        f"{i}\tcells grow\tcells divide {i}\t{i % 5}.0\n" for i in range(8)
    )
    bioasq = "".join(
        f"q{i}\tIs drug {i} effective?\tcontext {i} says so\t{['no', 'yes'][i % 2]}\n" for i in range(8)
    )
    medqa = "".join(
        json.dumps(
            {
                "question": f"Q{i}: best drug?",
                "options": {k: f"drug {k}" for k in "ABCD"},
                "answer_idx": "ABCD"[i % 4],
            }
        )
        + "\n"
        for i in range(8)
    )
    questions = {
        str(1000 + i): {
            "QUESTION": f"Does X{i} work?",
            "CONTEXTS": [f"ctx {i}", "more"],
            "final_decision": ["yes", "no", "maybe"][i % 3],
        }
        for i in range(12)
    }
    truth = {str(1000 + i): ["yes", "no", "maybe"][i % 3] for i in range(4)}
    dirs = {
        "hoc": _write(tmp_path / "HoC", {f"{s}.tsv": hoc for s in ("train", "dev", "test")}),
        "gad": _write(tmp_path / "GAD", {f"{s}.tsv": gad for s in ("train", "dev", "test")}),
        "ddi": _write(tmp_path / "DDI", {f"{s}.tsv": ddi for s in ("train", "dev", "test")}),
        "chemprot": _write(tmp_path / "chemprot", {f"{s}.tsv": chemprot for s in ("train", "dev", "test")}),
        "biosses": _write(tmp_path / "BIOSSES", {f"{s}.tsv": biosses for s in ("train", "dev", "test")}),
        "bioasq": _write(tmp_path / "BioASQ", {f"{s}.tsv": bioasq for s in ("train", "dev", "test")}),
        "medqa": _write(
            tmp_path / "medqa", {"train.jsonl": medqa, "dev.jsonl": medqa, "test_4options.jsonl": medqa}
        ),
        "pubmedqa": _write(
            tmp_path / "pubmedqa",
            {"ori_pqal.json": json.dumps(questions), "test_ground_truth.json": json.dumps(truth)},
        ),
    }
    return dirs
