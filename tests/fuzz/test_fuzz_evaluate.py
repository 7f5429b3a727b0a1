"""Fuzzing the evaluation readers: MEDIC/BioSyn and TSV dictionaries and the PubTator, BioSyn
``.concept``, held-out-synonym and TSV mention files (readers only: they write nothing)."""

from __future__ import annotations

from fuzz_helpers import check_outcome, fuzz_settings, fuzzed_bytes, workspace
from hypothesis import given

from bali.evaluate.dictionary import load_dictionary_file, load_dictionary_tsv
from bali.evaluate.mentions import read_biosyn, read_heldout, read_pubtator, read_tsv_mentions

DICTIONARY = b"D001241|C000001||Aspirin|ASA|acetylsalicylic acid\nMESH:D006261||Headache\nC||Diseases\n"
PUBTATOR = (
    b"1|t|Aspirin for headache.\n"
    b"1|a|Headache again.\n"
    b"1\t0\t7\tAspirin\tChemical\tD001241\n"
    b"1\t12\t20\theadache\tDisease\tD006261|OMIM:157300\n"
    b"1\t21\t29\tHeadache\tDisease\tD006261|D001241\tHead|ache\n"
    b"1\tCID\tD001241\tD006261\n"
)
CONCEPT = b"1||0|7||Chemical||Aspirin||D001241\n1||12|20||Disease||headache||D006261|OMIM:157300+D001241\n"
HELDOUT = b"node_id\tsource_id\tname\n0\tMESH:D001241\tASA\n1\tMESH:D006261\tcephalgia\n"
TSV = (
    b'C0018681\tHeadache\n"C0004057"\t"became ""flat"""\nSNOMED:25064002||cephalgia\nC0018681|D006261\tache\n'
)
EXAMPLES = 100


def _fuzz_reader(name: str, data: bytes, read: object) -> None:
    with workspace() as root:
        path = root / name
        path.write_bytes(data)
        check_outcome(lambda: read(path), [path])  # type: ignore[operator]


@fuzz_settings(EXAMPLES)
@given(fuzzed_bytes(DICTIONARY, (b"D0", b"OMIM:", b"||")))
def test_fuzz_dictionary(data: bytes) -> None:
    _fuzz_reader("dictionary.txt", data, load_dictionary_file)


@fuzz_settings(EXAMPLES)
@given(fuzzed_bytes(PUBTATOR, (b"|t|", b"|a|", b"1\t", b"\tCID\t", b"+")))
def test_fuzz_mentions_pubtator(data: bytes) -> None:
    _fuzz_reader("test.pubtator", data, read_pubtator)


@fuzz_settings(EXAMPLES)
@given(fuzzed_bytes(CONCEPT, (b"||", b"|", b"+", b"D00")))
def test_fuzz_mentions_biosyn(data: bytes) -> None:
    _fuzz_reader("doc.concept", data, read_biosyn)


@fuzz_settings(EXAMPLES)
@given(fuzzed_bytes(HELDOUT, (b"\t", b"node_id\tsource_id\tname\n")))
def test_fuzz_mentions_heldout(data: bytes) -> None:
    _fuzz_reader("heldout_synonyms.tsv", data, read_heldout)


@fuzz_settings(EXAMPLES)
@given(fuzzed_bytes(TSV, (b"\t", b"||", b'"', b"|", b"+")))
def test_fuzz_dictionary_tsv(data: bytes) -> None:
    _fuzz_reader("candidates.tsv", data, load_dictionary_tsv)


@fuzz_settings(EXAMPLES)
@given(fuzzed_bytes(TSV, (b"\t", b"||", b'"', b"|", b"+")))
def test_fuzz_mentions_tsv(data: bytes) -> None:
    _fuzz_reader("mentions.tsv", data, read_tsv_mentions)
