"""Postgres full text in each document's language.

A chunk is indexed at insert with the text-search configuration of its document's language
(``config_for``: the stemmer and stop words Postgres ships for it; ``simple``, lower-cased
words without stemming, for any other language and when none was detected), its CJK runs as
character bigrams (``workers.documents.language``: Postgres has no parser for them). A query
is parsed once per configuration among the documents searched, and each chunk is matched and
ranked by the query parsed in its own configuration.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable
from functools import reduce

from django.contrib.postgres.search import SearchQuery, SearchRank, SearchVector
from django.db.models import Case, FloatField, Q, QuerySet, Value, When

from workers.documents.language import cjk_index_text, cjk_runs, cjk_terms, without_cjk

# ISO 639-1 code → the configuration Postgres (16) ships for the language.
CONFIGS = {
    "ar": "arabic", "hy": "armenian", "eu": "basque", "ca": "catalan", "da": "danish",
    "nl": "dutch", "en": "english", "fi": "finnish", "fr": "french", "de": "german",
    "el": "greek", "hi": "hindi", "hu": "hungarian", "id": "indonesian", "ga": "irish",
    "it": "italian", "lt": "lithuanian", "ne": "nepali", "no": "norwegian", "nb": "norwegian",
    "nn": "norwegian", "pt": "portuguese", "ro": "romanian", "ru": "russian", "sr": "serbian",
    "es": "spanish", "sv": "swedish", "ta": "tamil", "tr": "turkish", "yi": "yiddish",
}
NEUTRAL = "simple"
# Chunks indexed before languages were detected carry "english" (migration 0005), their
# documents no language: a document without one is searched in both.
LEGACY = "english"
MAX_QUERY_BIGRAMS = 64  # a long CJK question: its first 64 distinct bigrams


def config_for(language: str) -> str:
    return CONFIGS.get(language, NEUTRAL)


def index_vector(text: str, config: str) -> SearchVector:
    """The value of ``Chunk.search`` for a chunk's text (an expression the INSERT computes)."""
    return SearchVector(Value(cjk_index_text(text)), config=config)


def configs_for(languages: Iterable[str]) -> set[str]:
    """The configurations the chunks of documents in these languages were indexed with."""
    languages = set(languages)
    return {config_for(language) for language in languages} | (
        {LEGACY} if "" in languages else set())


def text_query(query: str, config: str) -> SearchQuery | None:
    """The query in one configuration: its words as a web search (all of them, stemmed),
    and, if it has CJK runs, any of their bigrams (ranked by how many match)."""
    words = without_cjk(query).strip()
    parsed = SearchQuery(words, search_type="websearch", config=config) if words else None
    bigrams = list(dict.fromkeys(t for run in cjk_runs(query) for t in cjk_terms(run)))
    if bigrams:
        any_bigram = reduce(operator.or_, (SearchQuery(b, search_type="plain", config=config)
                                           for b in bigrams[:MAX_QUERY_BIGRAMS]))
        parsed = any_bigram if parsed is None else parsed & any_bigram
    return parsed


def match(chunks: QuerySet, query: str, configs: Iterable[str]) -> QuerySet:
    """``chunks`` that match ``query`` in their own configuration, annotated with ``rank``."""
    parsed = {c: q for c in sorted(configs) if (q := text_query(query, c)) is not None}
    if not parsed:  # no document to search, or nothing searchable in the query
        return chunks.none().annotate(rank=Value(0.0, output_field=FloatField()))
    matched = reduce(operator.or_, (Q(search_config=c, search=q) for c, q in parsed.items()))
    rank = Case(*(When(search_config=c, then=SearchRank("search", q)) for c, q in parsed.items()),
                default=Value(0.0), output_field=FloatField())
    return chunks.filter(matched).annotate(rank=rank)
