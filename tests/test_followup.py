"""The rule-based rewrite of follow-up questions (no model needed)."""

from __future__ import annotations

import pytest

from app.followup import names, rewrite

RASIULIS_ANSWER = (
    "Andrew Rasiulis, a defence expert with the Canadian Global Affairs Institute, said he believes "
    "the Russian strategy is to keep turning up the pressure. [1]"
)
BIDEN_ANSWER = (
    "U.S. President Joe Biden warned Putin in a conference call earlier this month that Russia will "
    'face "severe consequences" if it attacks Ukraine. [1]'
)
TALKS = "Where will the talks with the U.S. take place?"
# The seed article's sentence, as the extractive answerer gives it to TALKS.
GENEVA_ANSWER = (
    "Speaking during his annual marathon news conference with the international media, the Russian "
    "leader sounded a positive note by welcoming talks with the U.S., which are set to start in Geneva "
    "next month. [1]"
)
GENEVA_STATEMENT = (
    "the Russian leader sounded a positive note by welcoming talks with the U.S., which are set to "
    "start in Geneva next month"
)


def test_without_history_the_question_is_unchanged():
    assert rewrite("What does he think Russia's strategy is?", ()) == "What does he think Russia's strategy is?"


def test_a_pronoun_becomes_the_person_named_in_the_previous_question():
    history = [("Who is Andrew Rasiulis?", RASIULIS_ANSWER)]
    assert (
        rewrite("What does he think Russia's strategy is?", history)
        == "What does Andrew Rasiulis think Russia's strategy is?"
    )


def test_a_possessive_pronoun_becomes_a_possessive_name():
    history = [("Who is Andrew Rasiulis?", RASIULIS_ANSWER)]
    assert rewrite("What is his job?", history) == "What is Andrew Rasiulis's job?"


def test_the_person_can_come_from_the_previous_answer():
    history = [("Who warned Putin about severe consequences?", BIDEN_ANSWER)]
    assert rewrite("How did he warn him?", history) == "How did U.S. President Joe Biden warn him?"


def test_the_subject_carries_over_several_follow_ups():
    history = [
        ("Who is Andrew Rasiulis?", RASIULIS_ANSWER),
        ("What does he think Russia's strategy is?", "To keep turning up the pressure. [1]"),
    ]
    assert rewrite("Where does he work?", history) == "Where does Andrew Rasiulis work?"


def test_a_bare_question_word_takes_the_rest_of_the_previous_question():
    assert rewrite("And when?", [(TALKS, "In Geneva. [1]")]) == "When will the talks with the U.S. take place?"


def test_what_about_asks_the_previous_question_about_something_else():
    history = [("What did Putin demand from NATO?", "Guarantees. [1]")]
    assert rewrite("What about Biden?", history) == "What did Biden demand from NATO?"


def test_an_impersonal_reference_gets_the_previous_subject_added():
    assert (
        rewrite("When will they start?", [(TALKS, "In Geneva. [1]")])
        == "When will they start? (the talks with the U.S. take place)"
    )


def test_a_question_that_names_its_own_subject_is_unchanged():
    history = [(TALKS, "In Geneva. [1]")]
    assert rewrite("Who is Andrew Rasiulis?", history) == "Who is Andrew Rasiulis?"
    assert rewrite("What did Putin say about it?", history) == "What did Putin say about it?"


def test_names_skip_question_words_and_sentence_openers():
    assert names("Who is Andrew Rasiulis? The United States and NATO said so.") == [
        "Andrew Rasiulis",
        "United States",
        "NATO",
    ]


@pytest.mark.parametrize("follow_up", ["Who said that?", "Where is it?", "When did that happen?", "Who announced it?"])
def test_a_reference_to_the_previous_answer_carries_its_statement(follow_up):
    rewritten = rewrite(follow_up, [(TALKS, GENEVA_ANSWER)])
    assert rewritten == f"{follow_up} ({GENEVA_STATEMENT})"
    assert "Geneva" in rewritten and "[1]" not in rewritten


def test_a_long_answer_is_cut_to_its_sentence_sharing_most_words_with_the_previous_question():
    answer = (
        "Moscow expects the discussion to produce quick results, the Kremlin said on Thursday. [1] "
        "The talks with the U.S. will be held in Geneva, officials said. [2]"
    )
    assert (
        rewrite("Who said that?", [(TALKS, answer)])
        == "Who said that? (The talks with the U.S. will be held in Geneva, officials said)"
    )


def test_an_answer_not_restating_the_question_comes_with_the_previous_subject():
    assert (
        rewrite("Where is it?", [(TALKS, "In Geneva. [1]")])
        == "Where is it? (the talks with the U.S. take place: In Geneva)"
    )


def test_a_refusal_is_not_carried():
    history = [(TALKS, "The indexed articles do not answer this question.")]
    assert rewrite("Where is it?", history) == "Where is it? (the talks with the U.S. take place)"


WARNED = "Who warned Putin about severe consequences?"
WARNING_SUBJECT = "(warned Putin about severe consequences)"


@pytest.mark.parametrize(
    ("follow_up", "rewritten"),
    [
        ("How did he deliver it?", f"How did U.S. President Joe Biden deliver it? {WARNING_SUBJECT}"),
        ("How did he deliver that?", f"How did U.S. President Joe Biden deliver that? {WARNING_SUBJECT}"),
        ("How did he deliver the warning?", f"How did U.S. President Joe Biden deliver the warning? {WARNING_SUBJECT}"),
        ("How did Biden deliver it?", f"How did Biden deliver it? {WARNING_SUBJECT}"),  # named, not a pronoun
        ("How did Putin react to it?", f"How did Putin react to it? {WARNING_SUBJECT}"),  # named in the question
    ],
)
def test_it_beside_someone_of_the_previous_turn_is_what_the_previous_question_asked_about(follow_up, rewritten):
    assert rewrite(follow_up, [(WARNED, BIDEN_ANSWER)]) == rewritten


def test_a_noun_made_from_the_previous_questions_verb_carries_its_subject():
    history = [("Who announced the talks in Geneva?", "The Kremlin announced them on Thursday. [1]")]
    assert rewrite("When was the announcement made?", history) == (
        "When was the announcement made? (announced the talks in Geneva)"
    )


def test_a_definite_noun_the_previous_question_did_not_ask_about_carries_nothing():
    assert rewrite("When was the attack planned?", [(WARNED, BIDEN_ANSWER)]) == "When was the attack planned?"
    history = [("What kind of guarantee does Russia want about NATO?", "A written guarantee. [1]")]
    assert rewrite("Has NATO accepted that demand?", history) == "Has NATO accepted that demand?"
    # The same word, not another form of it: the question says what it is about itself.
    assert rewrite("Where do the talks end?", [(TALKS, "In Geneva. [1]")]) == "Where do the talks end?"


def test_a_subject_the_follow_up_already_holds_is_not_added_again():
    follow_up = "How did he deliver the warning to Putin about severe consequences?"
    assert rewrite(follow_up, [(WARNED, BIDEN_ANSWER)]) == (
        "How did U.S. President Joe Biden deliver the warning to Putin about severe consequences?"
    )


@pytest.mark.slow
def test_how_did_he_deliver_it_is_answered_with_the_seeds_conference_call(seed_engine):
    """Extractive, over the seed index: "it" read as the warning, not as Biden, finds the sentence of the
    warning, which says how it was given."""
    from app.engine import Engine

    engine = Engine(seed_engine.settings.model_copy(update={"llm": "extractive"}))
    first = engine.ask(WARNED)
    assert "Biden" in first.answer
    answer = engine.ask("How did he deliver it?", history=[(WARNED, first.answer)])
    assert answer.standalone_question.endswith(WARNING_SUBJECT)
    assert not answer.refused, answer.standalone_question
    assert "conference call" in answer.answer
    assert answer.citations and all(c.file == "000_416442306511e572.txt" for c in answer.citations)


@pytest.mark.slow
def test_who_said_that_finds_the_sentence_of_the_previous_answer_again(seed_engine):
    """Extractive, over the seed index: the follow-up is read with the previous answer and answered,
    not refused as it was when it carried only the previous question's subject."""
    from app.engine import Engine

    engine = Engine(seed_engine.settings.model_copy(update={"llm": "extractive"}))
    first = engine.ask(TALKS)
    assert "Geneva" in first.answer
    answer = engine.ask("Who said that?", history=[(TALKS, first.answer)])
    assert "Geneva" in answer.standalone_question and "[1]" not in answer.standalone_question
    assert answer.standalone_question.startswith("Who said that? (")
    assert not answer.refused
