from __future__ import annotations

from workers.documents.lexical import BM25Index, rrf


def test_bm25_ranks_the_matching_text_first():
    texts = [
        "The quarterly revenue grew by ten percent.",
        "Alice keeps the pass key 48213 in a drawer.",
        "Rivers flood in spring when the snow melts.",
    ]
    index = BM25Index(texts)
    assert index.search("what is Alice's pass key?", k=3)[0][0] == 1
    assert index.search("snow melts", k=3)[0][0] == 2
    assert index.search("the of and", k=3) == []  # stopwords only


def test_rrf_fuses_by_reciprocal_rank():
    fused = rrf([["a", "b", "c"], ["b", "c", "a"], ["b"]], k=60)
    assert [item for item, _ in fused] == ["b", "a", "c"]
    assert abs(dict(fused)["b"] - (1 / 62 + 1 / 61 + 1 / 61)) < 1e-12
    assert rrf([]) == []


def test_rrf_lead_keeps_each_arms_top_items_first():
    dense = ["needle", "a", "b", "c"]
    lexical = ["a", "b", "c", "d"]  # the needle shares no word with the query
    assert [i for i, _ in rrf([dense, lexical])][:3] == ["a", "b", "c"]  # plain RRF buries it
    fused = rrf([dense, lexical], lead=1)
    assert [i for i, _ in fused][:2] == ["needle", "a"]
    assert sorted(i for i, _ in fused) == ["a", "b", "c", "d", "needle"]
    assert dict(fused)["a"] == dict(rrf([dense, lexical]))["a"]  # scores unchanged
