"""Strategy options defined once (workers/qa/options.py): the typed definition matches the
strategy functions, and the engine, the API and the chat refuse the same values."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from workers.qa import STRATEGY_NAMES, SourceDocument, answer, parse_options
from workers.qa.coa import answer_coa
from workers.qa.full import answer_full
from workers.qa.mapreduce import answer_mapreduce
from workers.qa.options import STRATEGIES, StrategyOptions, given_options
from workers.qa.rag import answer_rag
from workers.qa.types import UnknownStrategy
from workers.qa.xl3m import answer_xl3m

FUNCTIONS = {"full": answer_full, "rag": answer_rag, "coa": answer_coa, "xl3m": answer_xl3m,
             "mapreduce": answer_mapreduce}
# Arguments the engine passes itself, not options a client sets.
ENGINE_ARGUMENTS = {"run", "question", "documents", "retrieve", "history", "answer_tokens"}
# rag's `dense` picks the in-memory retriever answer() builds, not an argument of answer_rag.
NOT_ARGUMENTS = {"rag": {"dense"}}


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_each_strategy_s_options_are_its_function_s_keyword_arguments(name):
    """Names and defaults agree, so the typed definition is the whole set a client may set."""
    params = {p.name: p.default for p in inspect.signature(FUNCTIONS[name]).parameters.values()
              if p.name not in ENGINE_ARGUMENTS}
    options = STRATEGIES[name].options
    fields = {f.name: f.default for f in dataclasses.fields(options)
              if f.name not in {g.name for g in dataclasses.fields(StrategyOptions)}
              and f.name not in NOT_ARGUMENTS.get(name, set())}
    assert fields == params


def test_one_list_of_strategies():
    assert STRATEGY_NAMES == ("auto", "rag", "coa", "mapreduce", "xl3m", "full")
    assert set(STRATEGY_NAMES) == set(FUNCTIONS) | {"auto"}


def test_options_are_typed_and_bounded():
    assert parse_options("coa", {"chunk_tokens": 1500, "evidence": False}).chunk_tokens == 1500
    assert parse_options("xl3m", {"fast_path": None}).fast_path is None
    assert parse_options("auto", {"compress": "2"}).compress == 2.0
    for strategy, raw, message in [
        ("full", {"top_k": 3}, "unknown option(s) top_k for strategy full; allowed: compress"),
        ("rag", {"top_k": True}, "option top_k must be an integer"),
        ("rag", {"top_k": 0}, "option top_k must be between 1 and 1,000, not 0"),
        ("xl3m", {"fast_path": 1}, "option fast_path must be true or false"),
        ("coa", {"chunk_tokens": 8}, "option chunk_tokens must be between 16"),
        ("rag", {"compress": 50}, "option compress must be a ratio above 1 and at most 10"),
        ("rag", [1], "options must be an object"),
    ]:
        with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
            parse_options(strategy, raw)
    with pytest.raises(UnknownStrategy, match="choose from auto, rag, coa, mapreduce, xl3m, full"):
        parse_options("telepathy")


def test_only_the_options_given_are_stored():
    assert given_options(parse_options("rag", {"top_k": 5, "dense": False})) == {"top_k": 5}
    assert given_options(parse_options("auto", {"compress": 3})) == {"compress": 3.0}


def test_answer_refuses_what_the_definition_refuses(llm):
    """answer() validates with the same definition: no strategy function sees a bad value."""
    doc = SourceDocument(1, "Notes", "The office moves to Lisbon in May.")
    with pytest.raises(ValueError, match="option top_k must be between"):
        answer("Where does the office move?", [doc], "rag", backend=llm,
               options={"top_k": 10**9})
    with pytest.raises(ValueError, match="unknown option"):
        answer("Where does the office move?", [doc], "auto", backend=llm,
               options={"segment_tokens": 512})
