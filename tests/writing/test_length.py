"""Length control: counting, the LongBench-Write score, trimming, the requested length, and
the count-continue-trim loop with the real model."""

from __future__ import annotations

import pytest

from tests.writing.conftest import Canned, Recording
from workers.writing import (
    count_words,
    distinct_ngram_share,
    length_score,
    requested_words,
    trim_to_words,
    write_to_length,
)
from workers.writing.length import RepetitionGuard


def test_count_words_counts_words_and_cjk_characters():
    assert count_words("Hello, world — it's 3 o'clock.") == 5
    assert count_words("你好世界") == 4
    assert count_words("  \n ") == 0
    assert count_words("- — … !") == 0  # punctuation alone is no word


@pytest.mark.parametrize(("required", "actual", "score"), [
    (1000, 1000, 100.0), (1000, 1300, 90.0), (1000, 4000, 0.0), (1000, 800, 87.5),
    (1000, 333, 0.0), (1000, 0, 0.0),
])
def test_length_score_is_longbench_write(required, actual, score):
    assert length_score(required, actual) == pytest.approx(score, abs=0.2)


def test_length_score_rejects_a_zero_requirement():
    with pytest.raises(ValueError):
        length_score(0, 10)


@pytest.mark.parametrize(("question", "words"), [
    ("Explain photosynthesis in 300 words.", 300),
    ("Write about 3,000 words on the French Revolution", 3000),
    ("a 500-word essay on cats", 500),
    ("Give me 2k words on Rome", 2000),
    ("Summarise it in roughly 150 words please", 150),
    ("What is the notice period?", None),
    ("Use 0 words", None),
    ("What do the 3 words in the title mean?", None),
    ("Answer in 10 words", 10),
    ("Ensure the essay is no shorter than 2000 words.", 2000),
])
def test_requested_words(question, words):
    assert requested_words(question) == words


def test_trim_cuts_at_a_sentence_end():
    text = "One two three. Four five six seven. Eight nine ten eleven twelve. Thirteen."
    assert trim_to_words(text, 7) == "One two three. Four five six seven."
    assert trim_to_words(text, 12) == \
        "One two three. Four five six seven. Eight nine ten eleven twelve."
    assert trim_to_words(text, 100) == text


def test_trim_without_a_usable_sentence_end_cuts_at_the_word_and_closes_it():
    assert trim_to_words("a b c d e f g h i j k l", 5) == "a b c d e."


def test_repetition_guard_drops_repeats_and_detects_a_loop():
    guard = RepetitionGuard(["The sky is blue today."], max_repeats=2)
    assert not guard.accept("The sky is blue today.")
    assert guard.accept("Grass grows in the field.")
    assert not guard.accept("Grass grows in the field!")
    assert not guard.looping
    assert not guard.accept("The sky is blue today.")
    assert guard.looping
    assert guard.accept("Yes.")  # short bits are never repeats


def test_distinct_ngram_share():
    assert distinct_ngram_share("a b c d e f") == 1.0
    assert distinct_ngram_share("a b c d a b c d a b c d") < 0.6


def test_write_to_length_hits_a_small_target_with_the_real_model(llm):
    target = 150
    result = write_to_length(
        llm, [{"role": "user", "content": "Write about the life of honey bees in a hive."}],
        target, max_rounds=4, temperature=0.7, top_p=0.9, seed=3)
    assert result.words == count_words(result.text)
    assert length_score(target, result.words) >= 80, (result.words, result.trace)
    assert result.rounds >= 1
    assert result.text.strip()[-1] in ".!?…\"”'’)", result.text[-80:]  # ends at a sentence end
    assert result.usage.completion_tokens > 0


def test_write_to_length_continues_when_short_and_stops_on_target(llm):
    short = ("Bees live in hives. " * 1) + "They make honey from nectar."
    long = " ".join(f"Sentence number {n} talks about bees." for n in range(1, 60))
    canned = Canned(llm, [short, "Workers collect pollen and feed the larvae every day.", long])
    result = write_to_length(canned, [{"role": "user", "content": "Bees"}], 60, max_rounds=5)
    assert canned.calls == 3  # asked, continued (short), continued again (still short)
    assert result.words == 60 and result.text.endswith("Sentence number 7 talks about bees.")
    rounds = [step for step in result.trace if "round" in step]
    assert [step["round"] for step in rounds] == [1, 2, 3]
    # The third answer is stopped at the sentence that reaches the target: nothing more of
    # it is decoded (59 sentences were on offer), so nothing has to be trimmed.
    assert rounds[2]["tokens_out"] < llm.count_tokens(long) / 4
    assert not any("trim" in step for step in result.trace)


def test_a_first_round_keeps_room_for_what_it_lacks_and_the_next_round_asks_for_it(llm):
    # 59 sentences on offer, none naming Paris: the first round stops 40 words early (the
    # room kept for it) instead of running to the target and having words cut later.
    long = " ".join(f"Sentence number {n} talks about bees." for n in range(1, 60))
    paris = " ".join(f"In Paris we saw bridge number {n} at dusk." for n in range(1, 20))
    canned = Recording(llm, [long, paris])

    def needs(text):
        return (0, "") if "Paris" in text else (40, "Write about Paris, and name it.")

    result = write_to_length(canned, [{"role": "user", "content": "Bees"}], 100, needs=needs)
    rounds = [step for step in result.trace if "round" in step]
    assert [step["words_added"] for step in rounds] == [60, 45]
    assert "Write about Paris, and name it." in canned.sent[1][-1]["content"]
    assert "Paris" in result.text and 95 <= result.words <= 105


def test_nothing_is_held_once_the_text_has_what_it_needs(llm):
    text = " ".join(f"Sentence {n} is about Paris and bees." for n in range(1, 40))
    canned = Canned(llm, [text])
    result = write_to_length(canned, [{"role": "user", "content": "Bees"}], 70,
                             needs=lambda t: (0, "") if "Paris" in t else (40, "Paris."))
    assert canned.calls == 1 and result.words == 70


def test_write_to_length_trims_a_sentence_that_runs_far_past_the_target(llm):
    start = " ".join(f"Bees visit flower number {n} today." for n in range(1, 10))  # 54 words
    run_on = "And then " + " ".join(["they fly on"] * 13) + "."  # 41 words in one sentence
    canned = Canned(llm, [f"{start} {run_on}"])
    result = write_to_length(canned, [{"role": "user", "content": "Bees"}], 60, max_rounds=1)
    assert any("trim" in step for step in result.trace)
    assert result.words == 54 and result.text == start  # cut where the run-on began


def test_a_runaway_round_is_stopped_and_its_junk_dropped(llm):
    good = "Bees live in hives. They make honey from nectar."
    glued = "AnunneredJaNaIaNezatElaphisEtherEnjalonEyriaEyrianNaradArvathArvestar"
    canned = Canned(llm, [f"{good} The names are {glued}{glued} and so on.",
                          "Workers feed the larvae every single day of the week."])
    result = write_to_length(canned, [{"role": "user", "content": "Bees"}], 20, max_rounds=2)
    assert result.trace[0]["looped"] and result.trace[0]["words_added"] == 9
    assert glued[:20] not in result.text and result.text.startswith(good)
    assert "Workers feed the larvae" in result.text  # the next round goes on


def test_repetition_penalty_reaches_the_backend(llm):
    spy = Canned(llm, ["Bees live in hives and make honey from the nectar of flowers."])
    sent = []
    spy.stream = lambda messages, **sampling: (sent.append(sampling),
                                                Canned.stream(spy, messages, **sampling))[1]
    write_to_length(spy, [{"role": "user", "content": "Bees"}], 10, repetition_penalty=1.2)
    assert sent and all(s["repetition_penalty"] == 1.2 for s in sent)


def test_write_to_length_stops_after_empty_rounds(llm):
    canned = Canned(llm, [""])
    result = write_to_length(canned, [{"role": "user", "content": "Bees"}], 100)
    assert result.text == "" and result.words == 0
    assert canned.calls == 4  # three retries from new angles, then give up


def test_write_to_length_rejects_a_bad_target(llm):
    with pytest.raises(ValueError):
        write_to_length(llm, [{"role": "user", "content": "x"}], 0)


def test_a_sentence_restating_one_said_before_is_dropped_when_asked():
    from workers.writing.overlap import SentenceIndex
    from workers.writing.writer import sentence_vectors

    said = ["In a small village by the sea there stood an old stone lighthouse with a red door."]
    # Half its content 4-grams from one earlier sentence: below the plain guard's 75 %.
    echo = "In a small village by the sea there stood an old stone mill with a blue roof."
    # The same said in other words: too few 4-grams in common, found by its embedding.
    paraphrase = ("There was an old stone lighthouse with a red door in a little village near "
                  "the sea.")
    new = "The keeper rowed to the mainland every Friday for bread, oil and letters."
    plain = RepetitionGuard(said)
    assert plain.accept(echo) and plain.accept(paraphrase)
    grams_only = RepetitionGuard(said, restated=SentenceIndex(said))
    assert not grams_only.accept(echo) and grams_only.accept(paraphrase)
    both = RepetitionGuard(said, restated=SentenceIndex(said, sentence_vectors))
    assert not both.accept(echo) and not both.accept(paraphrase) and both.accept(new)
    # What it accepts counts as said: the same again is dropped.
    assert not both.accept("The keeper rowed to the mainland each Friday for bread and oil.")


def test_write_to_length_drops_restatements_of_the_earlier_sections(llm):
    earlier = "There was an old stone lighthouse with a red door in a little village near the sea."
    canned = Canned(llm, ["In a small village by the sea there stood an old stone lighthouse "
                          "with a red door. The keeper rowed to the mainland every Friday "
                          "for bread, oil and letters."])
    from workers.writing.writer import sentence_vectors

    kept = write_to_length(canned, [{"role": "user", "content": "Go on."}], 20, max_rounds=1,
                           seen=[earlier], restated=sentence_vectors)
    assert "lighthouse" not in kept.text and "mainland" in kept.text
    assert kept.dropped_sentences == 1
    again = Canned(llm, canned.answers)
    plain = write_to_length(again, [{"role": "user", "content": "Go on."}], 20, max_rounds=1,
                            seen=[earlier])
    assert "lighthouse" in plain.text
