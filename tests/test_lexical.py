"""The BM25 side: typo correction of query terms against the indexed vocabulary."""

from __future__ import annotations

from app.lexical import LexicalIndex, tokenize

INDEX = LexicalIndex.build("r", [("1", "The senator from Massachusetts spoke on Monday."),
                                 ("2", "The ferry to Geneva leaves at noon.")])


def terms(text: str) -> list[str]:
    return tokenize([text], as_ids=False)[0]


def test_an_unknown_term_one_typo_away_is_corrected():
    assert INDEX.corrected("Who is the senator from Masschusetts?") == terms("Who is the senator from Massachusetts?")
    assert INDEX.corrected("ferry to Genvea") == terms("ferry Geneva")  # two letters swapped
    assert INDEX.corrected("Massachusetts senatr") == terms("Massachusetts senator")


def test_known_terms_and_hopeless_ones_are_left_alone():
    assert INDEX.corrected("senator from Massachusetts") is None  # nothing unknown
    assert INDEX.corrected("zebra crossing") is None  # unknown, but nothing indexed is one typo away
    assert INDEX.corrected("Massachusettes senatorial") is None  # two edits away is not a typo
    assert INDEX.corrected("Gva") is None  # too short to correct


def test_corrected_terms_search_like_a_query():
    assert INDEX.search(INDEX.corrected("Masschusetts"), 5)[0][0] == "1"
    assert INDEX.search("Masschusetts", 5) == []
    assert LexicalIndex.build("r", []).corrected("anything") is None
