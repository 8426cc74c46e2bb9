"""bench.summary_bench: its measures, and a run end to end on a small paper."""

from __future__ import annotations

import json

import pytest

from bench import summary_bench


def test_reach_counts_the_tenths_holding_a_cited_span():
    assert summary_bench.reach([], 1000) == 0.0
    assert summary_bench.reach([(0, 10), (50, 60)], 1000) == 0.1  # the first pages only
    assert summary_bench.reach([(i * 100 + 5, i * 100 + 20) for i in range(10)], 1000) == 1.0
    assert summary_bench.reach([(999, 1000)], 1000) == 0.1


def test_rouge_scores_overlap_with_the_reference():
    same = summary_bench.rouge("The telescope resolved the black hole.",
                               "The telescope resolved the black hole.")
    other = summary_bench.rouge("Bees need water in winter.",
                                "The telescope resolved the black hole.")
    assert same["rouge1"] == pytest.approx(1.0) and other["rouge1"] == 0.0
    assert set(same) == {"rouge1", "rouge2", "rougeLsum"}


def test_a_small_run_writes_its_table_and_plot(tmp_path):
    data = tmp_path / "data" / "loogle"
    data.mkdir(parents=True)
    body = " ".join(f"Section {i}. The survey counted {i * 7} hives on the island of Tern "
                    f"in year {1990 + i}, and the keepers moved them before the storms."
                    for i in range(40))
    row = {"input": body, "title": "Hives of Tern", "output": "A survey of hives on Tern."}
    (data / "longdep_summarization.jsonl").write_text(json.dumps(row) + "\n")
    out = tmp_path / "out"
    assert summary_bench.main(["--out", str(out), "--data", str(tmp_path / "data"),
                               "--documents", "1", "--strategies", "mapreduce"]) == 0
    results = json.loads((out / "results.json").read_text())
    (r,) = results["rows"]
    assert r["strategy"] == "mapreduce" and r["citations_valid"] and not r["markup"]
    assert 0.0 <= r["rougeLsum"] <= 1.0 and r["words"] > 0
    assert "| mapreduce | 1 |" in (out / "results.md").read_text()
    assert (out / "summary_bench.png").stat().st_size > 0
