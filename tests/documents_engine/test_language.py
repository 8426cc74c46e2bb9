"""Languages in the engine: detection, sentences of European and CJK texts, CJK bigrams for
lexical search (issue 20.5)."""

from __future__ import annotations

import pytest

from workers.documents.chunking import (
    chunk_text,
    sentence_spans,
    sentence_windows,
    whitespace_token_counter,
)
from workers.documents.language import cjk_index_text, cjk_terms, detect_language
from workers.documents.lexical import BM25Index

GERMAN = ("Die alten Häuser am Marktplatz wurden im achtzehnten Jahrhundert gebaut. "
          "Heute wohnen dort vor allem Familien mit Kindern, und die Mieten sind gestiegen. ")
FRENCH = ("Les maisons anciennes de la place du marché ont été construites au dix-huitième "
          "siècle. Aujourd'hui, des familles avec enfants y habitent et les loyers ont augmenté. ")
CHINESE = "市场广场上的老房子建于十八世纪。如今住在那里的主要是有孩子的家庭，租金也上涨了。"
JAPANESE = "市場広場の古い家は十八世紀に建てられました。今では子供のいる家族が多く住んでいます。"
ENGLISH = ("The old houses on the market square were built in the eighteenth century. "
           "Today mostly families with children live there, and the rents have risen. ")


@pytest.mark.parametrize(("text", "language"), [
    (GERMAN * 3, "de"), (FRENCH * 3, "fr"), (CHINESE * 3, "zh"), (JAPANESE * 3, "ja"),
    (ENGLISH * 3, "en"),
])
def test_the_language_of_a_text_is_detected(text, language):
    assert detect_language(text) == language


def test_a_long_document_is_detected_by_the_vote_of_its_windows():
    # An English abstract in front of a long German text: the body decides.
    assert detect_language(ENGLISH * 5 + GERMAN * 400) == "de"


@pytest.mark.parametrize("text", ["", "   ", "12 345 678 … 9,10", "ok"])
def test_no_language_is_claimed_without_letters_enough(text):
    assert detect_language(text) == ""


def _sentences(text, language):
    return [text[s:e] for s, e in sentence_spans(text, language)]


@pytest.mark.parametrize(("language", "text", "expected"), [
    ("de", "Dr. Müller kam um 3 Uhr an. Er sagte: „Das ist gut.“ Dann ging er z.B. nach "
           "Hause! Wirklich?",
     ["Dr. Müller kam um 3 Uhr an.", "Er sagte: „Das ist gut.“",
      "Dann ging er z.B. nach Hause!", "Wirklich?"]),
    ("fr", "M. Dupont est arrivé hier. Il a dit « bonjour » à tous. Puis il est parti… "
           "Voilà tout.",
     ["M. Dupont est arrivé hier.", "Il a dit « bonjour » à tous.",
      "Puis il est parti… Voilà tout."]),
    ("zh", "今天天气很好。我们去公园吧！你觉得怎么样？好的",
     ["今天天气很好。", "我们去公园吧！", "你觉得怎么样？", "好的"]),
    # The quote opens the next sentence; a stop inside a quote ends one (UAX #29 as is).
    ("ja", "今日は良い天気です。公園に行きましょう！どう思いますか？「はい。」と彼は言った。",
     ["今日は良い天気です。", "公園に行きましょう！", "どう思いますか？", "「はい。」",
      "と彼は言った。"]),
    ("en", "Mr. Smith arrived at 3 p.m. on Monday. He left.\n\nA new paragraph\nwrapped here.",
     ["Mr. Smith arrived at 3 p.m. on Monday.", "He left.", "A new paragraph\nwrapped here."]),
    ("en", "It cost £4.2 million. 312 vessels called, see p. 4 and Fig. 3 for details. 7 left.",
     ["It cost £4.2 million.", "312 vessels called, see p. 4 and Fig. 3 for details.",
      "7 left."]),
])
def test_sentences_of_european_and_cjk_texts(language, text, expected):
    assert _sentences(text, language) == expected


def test_chunks_of_a_chinese_text_end_on_its_full_stops_with_exact_spans():
    text = CHINESE * 40
    chunks = chunk_text(text, len, 100, language="zh")  # a token per character
    assert len(chunks) > 1
    for chunk in chunks:
        assert text[chunk.start:chunk.end] == chunk.text
        assert chunk.text.endswith("。")
    windows = sentence_windows(text, 0, 200, language="zh")
    assert windows and all(text[e - 1] == "。" for _, e in windows[:-1])


def test_cjk_runs_are_indexed_as_bigrams_and_other_words_are_left_alone():
    assert cjk_terms("房子") == ["房子"]
    assert cjk_terms("老房子") == ["老房", "房子"]
    assert cjk_terms("家") == ["家"]
    assert cjk_index_text("GDP增长了5%") == "GDP 增长 长了 5%"
    assert cjk_index_text("Häuser, Haus.") == "Häuser, Haus."


def test_bm25_finds_chinese_and_japanese_passages_by_their_words():
    passages = [CHINESE, JAPANESE, ENGLISH, GERMAN]
    index = BM25Index(passages)
    assert index.search("租金上涨", k=2)[0][0] == 0
    assert index.search("子供のいる家族", k=2)[0][0] == 1
    assert index.search("rents risen", k=2)[0][0] == 2


def test_the_tokenizer_free_counter_counts_a_cjk_character_as_a_word():
    assert whitespace_token_counter("The old houses, 老房子 and 家.") == 5 + 3 + 1
    chunks = chunk_text(CHINESE * 40, whitespace_token_counter, 100, language="zh")
    assert len(chunks) > 10 and all(c.tokens <= 100 for c in chunks)
