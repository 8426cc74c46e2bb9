"""Writing sections and the resumable driver: a killed run resumes at the next unwritten
section and never writes one twice; an empty section is retried, then marked."""

from __future__ import annotations

import threading
import time

import pytest

from tests.qa.conftest import Spy
from tests.writing.conftest import Canned
from workers.writing import (
    Plan,
    PlanSection,
    count_words,
    length_score,
    read_instruction,
    write_document,
)
from workers.writing.summary import running_summary
from workers.writing.writer import restate_sources, section_messages, write_section

INSTRUCTION = "Write a short piece about lighthouses."
PLAN = Plan([PlanSection(1, "What a lighthouse is for", 50),
             PlanSection(2, "Life of a lighthouse keeper", 50),
             PlanSection(3, "Lighthouses today", 50)], "fallback")


class Killed(Exception):
    """The worker died right after saving a section."""


def test_resume_after_a_kill_skips_done_sections_and_never_duplicates(llm):
    saved: dict[int, str] = {}
    calls: list[int] = []

    def save_then_die(index, result):
        calls.append(index)
        saved[index] = result.text
        raise Killed  # the job dies right after the first section is stored

    # The run that dies needs no real model; the resumed run below uses it.
    first = Canned(llm, ["Lighthouses guide ships past rocks at night with a bright beam."])
    with pytest.raises(Killed):
        write_document(INSTRUCTION, PLAN, backend=first, done_sections={},
                       save_section=save_then_die)
    assert calls == [1]

    started: list[int] = []

    def save(index, result):
        assert index not in saved, f"section {index} written twice"
        calls.append(index)
        saved[index] = result.text

    # Sections 1 and 2 were saved before the kill; the restart writes only section 3.
    saved[2] = "Keepers lived at the light and kept the lamp burning through storms."
    result = write_document(INSTRUCTION, PLAN, backend=llm, done_sections=dict(saved),
                            save_section=save, on_section_start=started.append)
    assert calls == [1, 3] and started == [3]
    assert result.skipped == [1, 2] and [s.index for s in result.sections] == [3]
    assert result.text.startswith(saved[1].strip())
    for section in result.sections:
        assert section.status == "done"
        assert length_score(50, section.words) >= 70, section.to_dict()


def test_an_empty_section_is_retried_then_marked(llm):
    canned = Canned(llm, [""])
    saved = {}
    result = write_document(INSTRUCTION, Plan([PlanSection(1, "Anything", 80)], "fallback"),
                            backend=canned, done_sections={},
                            save_section=lambda i, r: saved.setdefault(i, r))
    section = saved[1]
    assert section.status == "empty" and section.text == "" and section.attempts == 2
    assert canned.calls == 8  # two attempts of (ask + three retries from new angles)
    assert result.words == 0


def test_a_section_that_comes_back_on_retry_is_kept(llm):
    canned = Canned(llm, [""] * 4 + ["Keepers trimmed the wicks at dusk and watched all night."])
    result = write_section(canned, INSTRUCTION, PLAN, 2)
    assert result.status == "done" and result.attempts == 2 and result.words > 5


def test_prompt_holds_plan_summary_tail_references_and_style(llm):
    previous = " ".join(f"Earlier sentence number {n} about the sea." for n in range(200))
    summary = running_summary([(1, "What a lighthouse is for", previous)])
    messages = section_messages(INSTRUCTION, PLAN, PLAN.sections[1], previous=previous,
                                summary=summary, references=["Keepers lived on the rock."],
                                style="Plain and warm")
    prompt = messages[-1]["content"]
    assert "Plan of the whole text:" in prompt and "3. Lighthouses today" in prompt
    assert "Summary of the text so far" in prompt and "ends with" in prompt
    assert "number 199" in prompt and "number 3 " not in prompt  # tail only, not all
    assert "Keepers lived on the rock." in prompt and "Plain and warm" in prompt
    assert "section 2 of 3: Life of a lighthouse keeper" in prompt
    assert count_words(prompt) < 700


def test_reference_passages_stay_exact_spans_cut_after_their_120th_word(llm):
    passage = "Keepers lived on the rock.\n\nThey logged every ship. " + " ".join(
        f"word{n}" for n in range(200))
    prompt = section_messages(INSTRUCTION, PLAN, PLAN.sections[1],
                              references=[passage, "  "])[-1]["content"]
    block = prompt.split("Reference material", 1)[1].split("\n\nNow write section", 1)[0]
    assert "[1] Keepers lived on the rock.\n\nThey logged every ship. word0 " in block
    first = block.split("[1] ", 1)[1]
    assert passage.startswith(first) and count_words(first) == 120  # the exact start
    assert "[2]" not in block  # a blank passage is left out


def test_continuation_rounds_send_the_section_brief_not_the_whole_prompt(llm):
    instruction = INSTRUCTION + " " + " ".join(f"Requirement {n}: be precise." for n in range(40))
    canned = Canned(llm, ["Keepers lit the lamp at dusk.",
                          "They trimmed the wicks and watched the sea all night long."])
    sent = []
    canned.stream = lambda messages, **sampling: (sent.append(messages),
                                                   Canned.stream(canned, messages, **sampling))[1]
    write_section(canned, instruction, PLAN, 2, max_rounds=2, max_attempts=1)
    first, later = sent[0][-1]["content"], sent[1][-1]["content"]
    assert "Plan of the whole text" in first and "Requirement 39" in first
    assert "Plan of the whole text" not in later and "Requirement 39" not in later
    assert "This is section 2 of 3: Life of a lighthouse keeper" in later
    assert "Keepers lit the lamp at dusk." in later  # the tail of the section itself
    assert llm.count_tokens(sent[1]) < llm.count_tokens(sent[0]) / 2


def test_running_summary_keeps_to_its_budget():
    written = [(i, f"Point {i}", f"Opening sentence of section {i} goes here. More.")
               for i in range(1, 60)]
    summary = running_summary(written, max_words=120)
    assert count_words(summary) <= 120
    assert "section 59" in summary  # the most recent is kept


class Timed(Spy):
    """Records when each request starts and when its stream is closed."""

    def __init__(self, inner) -> None:  # noqa: ANN001
        super().__init__(inner)
        self.spans: list[dict] = []

    def stream(self, messages, **sampling):  # noqa: ANN001, ANN201
        span = {"prompt": messages[-1]["content"], "start": time.perf_counter()}
        self.spans.append(span)
        try:
            yield from super().stream(messages, **sampling)
        finally:
            span["end"] = time.perf_counter()

    def chat(self, messages, **sampling):  # noqa: ANN001, ANN201
        span = {"prompt": messages[-1]["content"], "start": time.perf_counter()}
        self.spans.append(span)
        try:
            return super().chat(messages, **sampling)
        finally:
            span["end"] = time.perf_counter()


def test_a_checklist_ending_is_generated_beside_the_section_not_after_it(llm):
    spec = read_instruction("Write a guide for new beekeepers: equipment and swarms. End "
                            "each section with a checklist.", 120)
    plan = Plan([PlanSection(1, "Equipment", 60, ["part:1"]),
                 PlanSection(2, "Swarms", 60, ["part:2"])], "structure", requirements=spec)
    timed = Timed(llm)
    result = write_section(timed, "A guide for new beekeepers.", plan, 1, max_rounds=1)
    checklist = [s for s in timed.spans if "checklist for a reader" in s["prompt"]]
    body = [s for s in timed.spans if "Now write section 1" in s["prompt"]]
    assert checklist and len(body) == 1
    assert checklist[0]["start"] < body[0]["end"]  # it ran while the section was decoded
    ending = next(c for c in result.checks if c["kind"] == "ending")
    # The checklist made beside the section is the first try; a further one is asked only
    # if that one fails the check (on a bf16 CPU the model's text depends on its company in
    # the batch, so whether the first passes is the model's, not the writer's).
    assert ending["ok"] and ending["tries"] == len(checklist)
    assert result.usage.completion_tokens > 0


def test_the_sources_to_restate_are_asked_together(llm):
    passages = ["The harbour wall was rebuilt in 1999 with stone from the old quarry.",
                "The tide in the bay rises by three metres twice a day in spring."]
    timed = Timed(llm)
    restate_sources(timed, passages, "The harbour")
    first, second = timed.spans
    assert second["start"] < first["end"]  # both in flight at once: decoded together


class Overlapping(Spy):
    """The real model, with the streams in flight at once counted (at their first token)."""

    def __init__(self, inner, width: int) -> None:  # noqa: ANN001
        super().__init__(inner)
        self.width, self.open, self.peak = width, 0, 0
        self.lock = threading.Lock()

    @property
    def concurrency(self) -> int:
        return self.width

    def stream(self, messages, **sampling):  # noqa: ANN001, ANN201
        self.sent.append(messages)
        with self.lock:
            self.open += 1
            self.peak = max(self.peak, self.open)
        try:
            yield from self.inner.stream(messages, **sampling)
        finally:
            with self.lock:
                self.open -= 1


FOUR = Plan([PlanSection(1, "Why lighthouses were built", 40),
             PlanSection(2, "How the lamp and lens work", 40),
             PlanSection(3, "A keeper's day", 40),
             PlanSection(4, "Lighthouses today", 40)], "fallback")


def _first_prompts(spy: Spy) -> dict[int, str]:
    """Each section's first-round prompt (the one that holds the plan), by section."""
    found: dict[int, str] = {}
    for messages in spy.sent:
        text = messages[-1]["content"]
        for index in range(1, 5):
            if f"Now write section {index} of 4" in text:
                found.setdefault(index, text)
    return found


def test_a_batching_backend_writes_neighbouring_sections_together(llm):
    spy = Overlapping(llm, width=8)
    saved, started, streamed = [], [], []
    result = write_document(INSTRUCTION, FOUR, backend=spy, done_sections={},
                            save_section=lambda i, r: saved.append((i, r.text)),
                            on_section_start=started.append, on_token=streamed.append)
    # Two sections in flight at once, saved in order, the pair's first one streamed.
    assert spy.peak >= 2
    assert [i for i, _ in saved] == [1, 2, 3, 4] and started == [2, 1, 4, 3]
    assert all(text for _, text in saved) and result.words > 100
    prompts = _first_prompts(spy)
    texts = dict(saved)
    # Section 2 is written beside section 1, so it cannot read it; section 3 reads both.
    first_sentence = texts[1].split(".")[0]
    assert first_sentence not in prompts[2]
    assert first_sentence in prompts[3] and texts[2].split(".")[0] in prompts[3]
    assert "".join(streamed).split(".")[0] == first_sentence


def test_one_request_at_a_time_writes_each_section_after_the_last(llm):
    spy = Overlapping(llm, width=1)
    saved, started = [], []
    write_document(INSTRUCTION, FOUR, backend=spy, done_sections={},
                   save_section=lambda i, r: saved.append((i, r.text)),
                   on_section_start=started.append)
    assert spy.peak == 1 and started == [1, 2, 3, 4]
    texts, prompts = dict(saved), _first_prompts(spy)
    assert texts[1].split(".")[0] in prompts[2]


def test_what_restates_the_section_written_beside_it_is_dropped(llm):
    said = ("The keeper climbed the spiral stairs every evening to light the great lamp, "
            "trimming the wick and polishing the brass until the lens shone over the sea. "
            "Ships far out could see the beam for twenty miles on a clear night.")
    waited: list[bool] = []

    def beside() -> list[str]:
        waited.append(True)
        return [said]

    # A paragraph restating it, and a sentence of it said again in other words inside a
    # paragraph that is otherwise new.
    first = said.split(". ")[0] + "."
    echo = Canned(llm, [first + "\n\nStorms kept supply boats away for weeks, so the family "
                        "stored flour, salt fish and lamp oil through the winter. On a clear "
                        "night ships far out at sea could see the beam for twenty miles."])
    plan = Plan([PlanSection(1, "A keeper's day", 150)], "fallback")
    result = write_section(echo, INSTRUCTION, plan, 1, earlier=[], beside=beside,
                           max_rounds=1)
    assert waited == [True]
    assert result.dropped_paragraphs == 1 and "spiral stairs" not in result.text
    assert "supply boats" in result.text and "twenty" not in result.text
    assert {"restated": 1} in result.trace
