"""The support check (app/support.py): the facts it reads, how it decides, and how it moves markers,
with an embedder that finds every text alike (so the words and facts decide); then the alignment of
copied, trimmed, merged, swapped, miscited and unrelated sentences with the real embedding model."""

from __future__ import annotations

import numpy as np
import pytest

from app import support
from app.citations import claim_sentences
from app.embedders import make_embedder
from app.settings import Settings
from conftest import SEED_FILE, make_passage

SEED_TITLE, *SEED_LINES = SEED_FILE.read_text(encoding="utf-8").splitlines()
SEED = make_passage("\n".join(SEED_LINES), 1, title=SEED_TITLE, article_id="seed")
MEETING = make_passage(
    "Officials said the delegations would meet for two days in January, with 40 experts on each side. "
    "The meeting will be held at the Intercontinental hotel.",
    2,
    title="Delegations to meet",
    article_id="meeting",
)
PASSAGES = [SEED, MEETING]


class AllAlike:
    """Every text the same vector: similarity 1, so only the words and the facts decide."""

    def __init__(self):
        self.calls: list[list[str]] = []

    def encode(self, texts: list[str]) -> np.ndarray:
        self.calls.append(list(texts))
        return np.ones((len(texts), 4)) / 2


def checked(answer: str, embedder=None) -> tuple[str, tuple]:
    return support.check(answer, PASSAGES, embedder or AllAlike())


# -- facts, and the decision, without a model


def test_facts_are_read_canonical_and_a_sentence_opening_word_is_no_name():
    stated = support.facts("The 1,000 troops left on Dec. 5 for two days, Putin's aides told the U.S. press.").stated
    assert stated == {"1000", "december", "5", "2", "putin", "us"}
    assert support.facts("You may go in May.").stated == {"may"}  # the month; "may" the verb is no fact
    assert support.facts("Moscow said so.").stated == set()  # a first word is a name only when known
    assert support.facts("Moscow said so.", frozenset({"moscow"})).stated == {"moscow"}


def test_a_fact_left_to_the_context_passes_but_one_swapped_beside_the_same_words_does_not():
    _, (pronoun,) = checked("Putin warned that Moscow expects the discussion to produce quick results [1].")
    assert pronoun.supported  # the passage says "He warned", and names Putin before
    _, (swapped,) = checked("The talks with the U.S. are set to start in Moscow next month [1].")
    assert not swapped.supported  # Moscow is in the passage, but "in Geneva next month" is what it says
    _, (absent,) = checked("The talks with the U.S. are set to start in Vienna next month [1].")
    assert not absent.supported and absent.support == ""


def test_a_number_is_checked_in_words_and_digits():
    _, (same,) = checked("The delegations would meet for 2 days [2].")
    _, (other,) = checked("The delegations would meet for three days [2].")
    assert same.supported and not other.supported


def test_a_marker_is_moved_to_the_passage_that_says_the_sentence_and_one_added_where_none_was():
    text, sentences = checked(
        "The meeting will be held at the Intercontinental hotel [1]. He warned that Moscow expects quick results."
    )
    assert text == (
        "The meeting will be held at the Intercontinental hotel [2]. He warned that Moscow expects quick results [1]."
    )
    assert [(s.citations, s.supported) for s in sentences] == [((2,), True), ((1,), True)]


def test_a_sentence_no_passage_says_keeps_its_marker_and_the_text_is_unchanged():
    answer = "The delegations would meet in Oslo [2]. The talks start in Geneva [1]."
    text, sentences = checked(answer)
    assert text == answer
    assert [(s.text, s.citations, s.supported) for s in sentences] == [
        ("The delegations would meet in Oslo.", (2,), False),
        ("The talks start in Geneva.", (1,), True),
    ]


def test_a_cited_passage_that_supports_the_sentence_wins_over_another():
    claim = claim_sentences("Talks start in Geneva [2].")[0]
    found = [
        support.Candidate(1, "Talks start in Geneva.", 1.0, 0.99, True),
        support.Candidate(2, "Talks will start in Geneva.", 1.0, 0.9, True),
    ]
    assert support.judge(claim, found).citations == (2,)
    assert support.judge(claim, found[:1]).citations == (1,)
    assert not support.judge(claim, [support.Candidate(2, "x", 1.0, 0.9, False)]).supported


def test_an_empty_answer_costs_no_embedding_and_all_sentences_take_one_call():
    embedder = AllAlike()
    assert support.check("", PASSAGES, embedder) == ("", ())
    assert support.check("[1]", PASSAGES, embedder) == ("[1]", ())
    assert embedder.calls == []
    checked("Talks start in Geneva [1]. The meeting is at a hotel [2]. Both sides agreed.", embedder)
    assert len(embedder.calls) == 1


# -- the alignment, with the embedding model


@pytest.fixture(scope="module")
def embedder():
    return make_embedder(Settings())


@pytest.mark.slow
@pytest.mark.parametrize(
    "kind, answer, expected",
    [
        ("copied", "He warned, however, that Moscow expects the discussion to produce quick results [1].", True),
        (
            "trimmed",
            "Speaking during his annual marathon news conference with the international media, the Russian leader "
            "sounded a positive note by welcoming talks with the U.S. [1].",
            True,
        ),
        (
            "merged",
            "Russia wants a written guarantee that Ukraine and other former Soviet countries will not be allowed into "
            "NATO, and the United States and NATO have already rejected the first demand [1].",
            True,
        ),
        (
            "number swapped",
            "Officials said the delegations would meet for two days, with 400 experts on each side [2].",
            False,
        ),
        (
            "name swapped",
            "Andrew Rasiulis said he believes the Russian strategy is to keep turning up the pressure to bleed "
            "concessions out of both Canada and the West [1].",
            False,
        ),
        (
            "name swapped",
            "U.S. President Joe Biden warned Rasiulis in a conference call earlier this month [1].",
            False,
        ),
        ("unrelated", "For the fifth year in a row, the Mediterranean diet was named the best diet [1].", False),
    ],
)
def test_sentences_are_supported_or_flagged_with_the_model(embedder, kind: str, answer: str, expected: bool):
    text, (sentence,) = support.check(answer, PASSAGES, embedder)
    assert sentence.supported is expected, kind
    assert text == answer  # no marker moved
    if expected:
        assert sentence.support and sentence.support.split()[0] in SEED.text
        if kind == "merged":  # both sentences of the passage
            assert "written guarantee" in sentence.support and "rejected the first demand" in sentence.support
    else:
        assert sentence.support == ""


@pytest.mark.slow
def test_a_marker_on_the_wrong_passage_is_corrected_with_the_model(embedder):
    text, (sentence,) = support.check(
        "Officials said the delegations would meet for two days in January [1].", PASSAGES, embedder
    )
    assert text == "Officials said the delegations would meet for two days in January [2]."
    assert sentence.supported and sentence.citations == (2,)
    assert sentence.support.startswith("Officials said the delegations would meet for two days in January")
