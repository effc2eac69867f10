"""The rule-based rewrite of follow-up questions (no model needed)."""

from __future__ import annotations

from app.followup import names, rewrite

RASIULIS_ANSWER = ("Andrew Rasiulis, a defence expert with the Canadian Global Affairs Institute, said he believes "
                   "the Russian strategy is to keep turning up the pressure. [1]")
BIDEN_ANSWER = ("U.S. President Joe Biden warned Putin in a conference call earlier this month that Russia will "
                "face \"severe consequences\" if it attacks Ukraine. [1]")
TALKS = "Where will the talks with the U.S. take place?"


def test_without_history_the_question_is_unchanged():
    assert rewrite("What does he think Russia's strategy is?", ()) == "What does he think Russia's strategy is?"


def test_a_pronoun_becomes_the_person_named_in_the_previous_question():
    history = [("Who is Andrew Rasiulis?", RASIULIS_ANSWER)]
    assert rewrite("What does he think Russia's strategy is?", history) == \
        "What does Andrew Rasiulis think Russia's strategy is?"


def test_a_possessive_pronoun_becomes_a_possessive_name():
    history = [("Who is Andrew Rasiulis?", RASIULIS_ANSWER)]
    assert rewrite("What is his job?", history) == "What is Andrew Rasiulis's job?"


def test_the_person_can_come_from_the_previous_answer():
    history = [("Who warned Putin about severe consequences?", BIDEN_ANSWER)]
    assert rewrite("How did he warn him?", history) == "How did U.S. President Joe Biden warn him?"


def test_the_subject_carries_over_several_follow_ups():
    history = [("Who is Andrew Rasiulis?", RASIULIS_ANSWER),
               ("What does he think Russia's strategy is?", "To keep turning up the pressure. [1]")]
    assert rewrite("Where does he work?", history) == "Where does Andrew Rasiulis work?"


def test_a_bare_question_word_takes_the_rest_of_the_previous_question():
    assert rewrite("And when?", [(TALKS, "In Geneva. [1]")]) == "When will the talks with the U.S. take place?"


def test_what_about_asks_the_previous_question_about_something_else():
    history = [("What did Putin demand from NATO?", "Guarantees. [1]")]
    assert rewrite("What about Biden?", history) == "What did Biden demand from NATO?"


def test_an_impersonal_reference_gets_the_previous_subject_added():
    assert rewrite("When will they start?", [(TALKS, "In Geneva. [1]")]) == \
        "When will they start? (the talks with the U.S. take place)"


def test_a_question_that_names_its_own_subject_is_unchanged():
    history = [(TALKS, "In Geneva. [1]")]
    assert rewrite("Who is Andrew Rasiulis?", history) == "Who is Andrew Rasiulis?"
    assert rewrite("What did Putin say about it?", history) == "What did Putin say about it?"


def test_names_skip_question_words_and_sentence_openers():
    assert names("Who is Andrew Rasiulis? The United States and NATO said so.") == \
        ["Andrew Rasiulis", "United States", "NATO"]
