"""Estimates before a question runs: rates fitted from recorded calls, per-strategy costs
that follow each strategy's sizes, and a store that is down never failing a call."""

from __future__ import annotations

import random

import pytest
from django.conf import settings

from apps.core.engine import engine_config
from workers import config
from workers.llm.rates import CallSample, RateBook, Rates, book, fit, model_key
from workers.qa import SourceDocument
from workers.qa.engine import answer
from workers.qa.estimate import preview


def _calls(prefill: float, decode: float, per_call: float, n: int = 40, seed: int = 1,
           per_context: float = 0.0):
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        p, c = rng.randrange(50, 4000), rng.randrange(1, 200)
        noise = rng.uniform(0.97, 1.03)
        writing = c * (1 / decode + per_context * p / 1000)
        out.append(CallSample(p, c, (per_call + p / prefill + writing) * noise))
    return out


@pytest.mark.parametrize(("prefill", "decode", "per_call", "per_context"), [
    (900.0, 25.0, 0.05, 0.0), (20000.0, 300.0, 0.2, 0.0), (900.0, 25.0, 0.05, 0.2)])
def test_fit_recovers_the_rates_calls_were_made_at(prefill, decode, per_call, per_context):
    rates = fit(_calls(prefill, decode, per_call, per_context=per_context))
    assert rates is not None
    assert rates.prefill == pytest.approx(prefill, rel=0.15)
    assert rates.decode == pytest.approx(decode, rel=0.15)
    assert rates.per_context == pytest.approx(per_context, abs=0.02)
    assert rates.calls == 40


def test_writing_in_a_long_window_is_slower():
    rates = Rates(prefill=1000.0, decode=20.0, per_call=0.0, calls=9, per_context=0.5)
    assert rates.seconds(1, 0, 10, window=4000) == pytest.approx(10 * (0.05 + 2.0))
    assert rates.seconds(1, 0, 10, window=0) == pytest.approx(0.5)


def test_too_few_or_too_alike_calls_give_no_rates():
    assert fit(_calls(900, 25, 0.05, n=3)) is None
    same = [CallSample(100, 10, 1.0)] * 10  # one shape only: reading and writing inseparable
    assert fit(same) is None


def test_a_store_that_is_down_never_fails_a_call():
    book = RateBook("redis://127.0.0.1:9/0")  # nothing listens on port 9
    book.record("embedded:x", CallSample(10, 2, 0.5))  # no exception
    assert book.samples("embedded:x") == [] and book.rates("embedded:x") is None


def test_a_process_refits_at_most_every_fit_seconds_and_forgetting_drops_the_fit(monkeypatch):
    from workers.llm import rates as rates_module

    store = RateBook(settings.REDIS_URL)
    model = f"test:refit-{random.randrange(10**9)}"
    try:
        for sample in _calls(900.0, 25.0, 0.05):
            store.record(model, sample)
        first = store.rates(model)
        assert first is not None
        for sample in _calls(100.0, 5.0, 1.0, seed=2):  # a much slower model from now on
            store.record(model, sample)
        assert store.rates(model) == first  # within FIT_SECONDS: the fit is reused
        monkeypatch.setattr(rates_module, "FIT_SECONDS", 0.0)
        assert store.rates(model) != first  # past it: refitted from the calls now stored
        monkeypatch.setattr(rates_module, "FIT_SECONDS", 3600.0)
        store.forget(model)
        assert store.rates(model) is None  # forgetting drops the cached fit too
    finally:
        store.forget(model)


def _doc(tokens_wanted: int, llm) -> SourceDocument:
    sentence = "The harbour's northern quay was rebuilt by Kessler Marine Works in spring. "
    text = sentence * max(1, tokens_wanted // max(1, llm.count_tokens(sentence)))
    return SourceDocument("d", "Harbour", text, tokens=llm.count_tokens(text))


def test_costs_follow_each_strategys_sizes(llm):
    rates = Rates(prefill=1000.0, decode=20.0, per_call=0.1, calls=50)
    small = preview("Who rebuilt the quay?", [_doc(800, llm)], llm, rates=rates)
    big = preview("Who rebuilt the quay?", [_doc(12000, llm)], llm, rates=rates)
    assert small.choice == "full" and small.estimate("auto").strategy == "full"
    assert big.choice != "full" and big.estimate("full") is None  # it cannot fit
    by = {e.strategy: e for e in big.estimates}
    assert by["coa"].calls > 2 and by["coa"].prompt_tokens > big.document_tokens
    assert by["rag"].calls == 1 and by["rag"].prompt_tokens < by["coa"].prompt_tokens
    assert by["rag"].seconds < by["coa"].seconds
    # mapreduce reads as much as coa but writes its notes side by side
    assert by["mapreduce"].calls >= 3 and by["mapreduce"].prompt_tokens > big.document_tokens
    assert big.estimate("coa").seconds > small.estimate("coa").seconds
    assert set(big.to_dict()) == {"document_tokens", "budget", "auto", "estimates", "rates"}


def test_without_rates_the_seconds_are_unknown_not_invented(llm):
    found = preview("Who rebuilt the quay?", [_doc(800, llm)], llm,
                    rates=None).estimates[0]
    # no rate store configured in the engine-only tests, or too few calls recorded yet
    assert found.seconds is None or found.seconds > 0


def test_every_model_call_of_an_answer_is_recorded_for_the_rates(llm):
    config.install(engine_config)  # what CoreConfig.ready does (another test may reset it)
    url = config.current().rates_url
    assert url == settings.REDIS_URL, "the app's engine configuration names the rate store"
    store = book(url)
    before = len(store.samples(model_key(llm)))
    answer("Who rebuilt the quay?", [_doc(300, llm)], "full", backend=llm, answer_tokens=16,
           grounding="off")
    after = store.samples(model_key(llm))
    assert len(after) >= min(before + 1, 400)
    assert after[0].prompt_tokens > 100 and after[0].seconds > 0
