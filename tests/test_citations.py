"""Citation markers, supporting sentences and quotation checks (no model needed)."""

from __future__ import annotations

from app.citations import make_citation, resolve_markers, supporting_sentence, unsupported_quotes
from app.documents import Passage
from conftest import make_passage


def passage(text: str, rank: int = 1, article: str = "a") -> Passage:
    return make_passage(
        text,
        rank,
        chunk_ids=(f"{article}-0",),
        article_id=article,
        title=f"Title {article}",
        source="VOA",
        url=f"https://example.org/{article}",
        file=f"{article}.txt",
    )


GENEVA = passage(
    "Putin spoke on Thursday. Talks with the U.S. are set to start in Geneva next month. "
    "He warned that Moscow expects quick results.",
    article="geneva",
)
RASIULIS = passage(
    "Andrew Rasiulis is a defence expert. He said an all-out military action would be "
    '"extremely bloody" and hard to keep contained.',
    rank=2,
    article="rasiulis",
)


def test_supporting_sentence_is_the_passage_sentence_closest_to_the_text():
    start, end = supporting_sentence(GENEVA, "The talks start in Geneva.")
    assert GENEVA.text[start:end] == "Talks with the U.S. are set to start in Geneva next month."


def test_supporting_sentence_without_shared_words_is_the_first_sentence():
    start, end = supporting_sentence(GENEVA, "zebra")
    assert GENEVA.text[start:end] == "Putin spoke on Thursday."


def test_make_citation_copies_the_passage_and_slices_the_sentence():
    citation = make_citation(2, RASIULIS, (0, 36))
    assert (citation.number, citation.article_id, citation.file, citation.url) == (
        2,
        "rasiulis",
        "rasiulis.txt",
        "https://example.org/rasiulis",
    )
    assert citation.sentence == "Andrew Rasiulis is a defence expert."
    assert citation.passage == RASIULIS.text


def test_markers_are_tied_to_their_passages_with_the_sentence_they_support():
    text, citations, warnings = resolve_markers(
        "Talks start in Geneva [1]. An all-out war would be extremely bloody [2].", [GENEVA, RASIULIS]
    )
    assert text == "Talks start in Geneva [1]. An all-out war would be extremely bloody [2]."
    assert [(c.number, c.article_id) for c in citations] == [(1, "geneva"), (2, "rasiulis")]
    assert citations[0].sentence == "Talks with the U.S. are set to start in Geneva next month."
    assert citations[1].sentence.startswith("He said an all-out military action")
    assert warnings == ()


def test_markers_pointing_to_no_passage_are_removed():
    text, citations, _ = resolve_markers("Geneva [3]. Next month [0]. Talks [1].", [GENEVA])
    assert text == "Geneva. Next month. Talks [1]."
    assert [c.number for c in citations] == [1]


def test_a_list_marker_keeps_only_its_valid_numbers_and_numbers_are_not_renumbered():
    text, citations, _ = resolve_markers("Bloody, he said [2, 5, 2].", [GENEVA, RASIULIS])
    assert text == "Bloody, he said [2]."
    assert [(c.number, c.article_id) for c in citations] == [(2, "rasiulis")]


def test_a_passage_cited_twice_is_one_citation():
    _, citations, _ = resolve_markers("Talks in Geneva [1]. Moscow expects quick results [1].", [GENEVA])
    assert len(citations) == 1


def test_a_marker_standing_after_the_sentence_supports_that_sentence():
    _, citations, _ = resolve_markers("Moscow expects quick results. [1]", [GENEVA])
    assert citations[0].sentence == "He warned that Moscow expects quick results."


def test_no_markers_no_citations():
    assert resolve_markers("Geneva.", [GENEVA]) == ("Geneva.", (), ())


def test_quotes_found_in_a_passage_pass_whatever_their_case_and_punctuation():
    assert unsupported_quotes('He called it "Extremely  bloody!" [2]', [GENEVA, RASIULIS]) == ()
    assert unsupported_quotes("He called it “extremely bloody”", [RASIULIS]) == ()


def test_quotes_not_in_any_passage_are_flagged():
    _, _, warnings = resolve_markers('Rasiulis called it "a certain victory" [2].', [GENEVA, RASIULIS])
    assert warnings == ('quoted text not found in the passages: "a certain victory"',)


def test_an_elided_quote_is_checked_part_by_part():
    assert unsupported_quotes('"Talks with the U.S. ... in Geneva next month"', [GENEVA]) == ()
    assert len(unsupported_quotes('"Talks with the U.S. ... in Paris next month"', [GENEVA])) == 1
