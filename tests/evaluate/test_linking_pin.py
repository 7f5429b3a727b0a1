"""Pinned Acc@1/Acc@5/MRR of the real encoder on fixed fixtures.

The numbers were recorded with the evaluation as it was before the embedding cache, block search and
new formats (issue 12); they must not move, whichever search path or cache state produces them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bali.evaluate.linking import evaluate_linking

DICTIONARY = """\
D006333||Heart Failure|cardiac failure|heart decompensation|HF
D003920||Diabetes Mellitus|diabetes|DM
D003924||Diabetes Mellitus, Type 2|type 2 diabetes|NIDDM|adult-onset diabetes
D001249||Asthma|bronchial asthma
D006973||Hypertension|high blood pressure|HTN
D009203||Myocardial Infarction|heart attack|MI
D001281||Atrial Fibrillation|auricular fibrillation|AF
D003866||Depressive Disorder|depression|melancholia
D012559||Schizophrenia|dementia praecox
D004827||Epilepsy|seizure disorder|epileptic syndrome
D007249||Inflammation|inflammatory reaction
D008107||Liver Diseases|hepatic disease|liver disorder
D056486||Chemical and Drug Induced Liver Injury|drug-induced liver injury|hepatotoxicity
D007676||Kidney Failure, Chronic|chronic renal failure|CKD
D051437||Renal Insufficiency|kidney insufficiency|renal failure
D010300||Parkinson Disease|paralysis agitans|Parkinson's disease
D000544||Alzheimer Disease|Alzheimer's dementia|senile dementia
D009369||Neoplasms|tumor|cancer|neoplasm
D001943||Breast Neoplasms|breast cancer|breast tumor
D008175||Lung Neoplasms|lung cancer|pulmonary neoplasm
D006470||Hemorrhage|bleeding|haemorrhage
D013927||Thrombosis|blood clot|thrombus
D004417||Dyspnea|shortness of breath|breathlessness
D010146||Pain|ache
D005334||Fever|pyrexia|febrile
D014839||Vomiting|emesis
D009325||Nausea|queasiness
D003967||Diarrhea|diarrhoea|loose stools
D006261||Headache|cephalalgia|head pain
D012640||Seizures|convulsion|fit
"""

PUBTATOR = """\
10|t|Congestive heart failure (CHF) and type II diabetes in elderly patients.
10|a|Patients with CHF often had high blood-pressure, kidney failure and hepatic injury caused by drugs.
10\t0\t24\tCongestive heart failure\tDisease\tD006333
10\t26\t29\tCHF\tDisease\tD006333
10\t35\t50\ttype II diabetes\tDisease\tD003924
10\t102\t121\thigh blood-pressure\tDisease\tD006973
10\t123\t137\tkidney failure\tDisease\tD051437|D007676
10\t142\t172\thepatic injury caused by drugs\tDisease\tD056486
10\t180\t205\tbreast and lung cancers\tDisease\tD001943|D008175\tbreast cancers|lung cancers
11|t|Seizures, fever and vomiting after vaccination.
11|a|Fits and pyrexial episodes; one child had a heart attack and pain in the head.
11\t0\t8\tSeizures\tDisease\tD012640
11\t10\t15\tfever\tDisease\tD005334
11\t20\t28\tvomiting\tDisease\tD014839
11\t48\t52\tFits\tDisease\tD012640
11\t57\t75\tpyrexial episodes\tDisease\tD005334
11\t92\t104\theart attack\tDisease\tD009203
11\t109\t125\tpain in the head\tDisease\tD006261
11\t130\t140\tgout flare\tDisease\tD006073
11\t150\t155\tdunno\tDisease\t-1
"""

BIOSYN = """\
20||0|10||Disease||parkinsons||D010300
20||11|20||Disease||alzheimers disease||D000544
20||21|30||Disease||tumour||D009369
20||31|40||Disease||bleeding in the brain||D006470
20||41|50||Disease||breathlessness on exertion||D004417
20||51|60||Disease||loose stool+nausea||D003967+D009325
20||61|70||Disease||melancholy||D003866
20||71|80||Disease||fibrillation of the atria||D001281
20||81|90||Disease||asthmatic||D001249
20||91|99||Disease||schizophrenic disorder||D012559
20||99|110||Disease||clotting||D013927
20||110|120||Disease||inflammatory||D007249
"""

# (format, pooling, protocol, subset) -> (mentions, Acc@1, Acc@5, MRR), recorded before issue 12.
PINNED: dict[tuple[str, str, str, str], tuple[int, float, float, float]] = {
    ("pubtator", "mean", "zero-shot", "all"): (
        15,
        0.3333333333333333,
        0.5333333333333333,
        0.4492592592592592,
    ),
    ("pubtator", "mean", "zero-shot", "no-composite"): (
        14,
        0.35714285714285715,
        0.5714285714285714,
        0.47837301587301584,
    ),
    ("pubtator", "mean", "zero-shot+abbreviation-expansion", "all"): (
        15,
        0.3333333333333333,
        0.4666666666666667,
        0.41962962962962963,
    ),
    ("pubtator", "mean", "zero-shot+abbreviation-expansion", "no-composite"): (
        14,
        0.35714285714285715,
        0.5,
        0.4466269841269841,
    ),
    ("pubtator", "cls", "zero-shot", "all"): (15, 0.4666666666666667, 0.6, 0.5388119288119289),
    ("pubtator", "cls", "zero-shot", "no-composite"): (14, 0.5, 0.6428571428571429, 0.5693619872191301),
    ("pubtator", "cls", "zero-shot+abbreviation-expansion", "all"): (
        15,
        0.4,
        0.5333333333333333,
        0.4745262145262145,
    ),
    ("pubtator", "cls", "zero-shot+abbreviation-expansion", "no-composite"): (
        14,
        0.42857142857142855,
        0.5714285714285714,
        0.5004844361987218,
    ),
    ("biosyn", "mean", "zero-shot", "all"): (
        12,
        0.08333333333333333,
        0.3333333333333333,
        0.24216570466570464,
    ),
    ("biosyn", "mean", "zero-shot", "no-composite"): (
        11,
        0.09090909090909091,
        0.2727272727272727,
        0.23387773842319293,
    ),
    ("biosyn", "cls", "zero-shot", "all"): (12, 0.0, 0.3333333333333333, 0.17024078862314154),
    ("biosyn", "cls", "zero-shot", "no-composite"): (11, 0.0, 0.36363636363636365, 0.17662631486160899),
}


@pytest.fixture(scope="module")
def seeded_bert_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A tiny BERT with seeded random weights: mediocre on purpose, so rankings (Acc@5, MRR) matter."""
    import torch
    from transformers import BertConfig, BertModel

    from bali.lm import load_tokenizer

    out = tmp_path_factory.mktemp("seeded_bert")
    tokenizer = load_tokenizer("builtin")
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        initializer_range=0.5,  # a default-scale random BERT gives near-identical CLS vectors (cos 0.99998)
    )
    torch.manual_seed(0)
    BertModel(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return str(out)


@pytest.fixture
def pin_files(tmp_path: Path) -> dict[str, Path]:
    files = {"dictionary": "dict.txt", "pubtator": "m.PubTator.txt", "biosyn": "m.concept"}
    texts = {"dictionary": DICTIONARY, "pubtator": PUBTATOR, "biosyn": BIOSYN}
    paths = {}
    for key, name in files.items():
        paths[key] = tmp_path / name
        paths[key].write_text(texts[key], encoding="utf-8")
    return paths


def test_pinned_metrics_of_a_seeded_encoder(seeded_bert_dir: str, pin_files: dict[str, Path]) -> None:
    got = {}
    for fmt in ("pubtator", "biosyn"):
        result = evaluate_linking(
            [seeded_bert_dir],
            pin_files["dictionary"],
            pin_files[fmt],
            ["mean", "cls"],
            mention_format=fmt,
            abbreviations=fmt == "pubtator",
        )
        for r in result["rows"]:
            got[fmt, r["pooling"], r["protocol"], r["subset"]] = (
                r["mentions"],
                r["acc@1"],
                r["acc@5"],
                r["mrr"],
            )
    assert set(got) == set(PINNED)
    for key, (n, acc1, acc5, mrr) in PINNED.items():
        assert got[key][0] == n, key
        assert got[key][1:] == pytest.approx((acc1, acc5, mrr), abs=1e-9), key
