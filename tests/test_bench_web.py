"""The web bench's reading of wrk's and autocannon's reports (units, trailing spaces, errors
of both kinds)."""

from __future__ import annotations

import json

from bench.web_bench import parse_autocannon, parse_wrk

REPORT = """Running 5s test @ http://127.0.0.1:8766/healthz
  2 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   703.68ms  493.08ms   1.90s    85.27%
    Req/Sec    53.02     42.85   174.00     62.22%
  Latency Distribution
     50%  464.39ms
     75%  964.01ms
     90%    1.80s~
     99%    1.89s~
  307 requests in 5.03s, 90.54KB read
  Socket errors: connect 0, read 2, write 0, timeout 3
  Non-2xx or 3xx responses: 4
Requests/sec:     61.06
Transfer/sec:     18.01KB
""".replace("~", " ")  # wrk pads seconds with a space


def test_wrk_report():
    assert parse_wrk(REPORT) == {"requests": 307, "requests_per_s": 61.06, "p50_ms": 464.4,
                                 "p99_ms": 1890.0, "errors": 9}


def test_a_clean_run_has_no_errors():
    clean = REPORT.replace("  Socket errors: connect 0, read 2, write 0, timeout 3\n", "") \
        .replace("  Non-2xx or 3xx responses: 4\n", "").replace("464.39ms", "1500.00us")
    result = parse_wrk(clean)
    assert result["errors"] == 0 and result["p50_ms"] == 1.5


# autocannon 9's --json report, trimmed to what the bench reads and a few neighbours.
AUTOCANNON = {"url": "http://127.0.0.1:8766/healthz", "connections": 50, "duration": 10.02,
              "errors": 3, "timeouts": 2, "non2xx": 4, "2xx": 4005, "5xx": 4,
              "latency": {"average": 120.5, "p50": 101, "p99": 388, "max": 10010},
              "requests": {"average": 400.9, "total": 4009, "sent": 4059}}


def test_autocannon_report():
    # requests/s from the total over the run's length (as wrk gives it); timeouts are among
    # the errors already, so only non-2xx answers add to them.
    assert parse_autocannon(json.dumps(AUTOCANNON)) == {
        "requests": 4009, "requests_per_s": 400.1, "p50_ms": 101.0, "p99_ms": 388.0,
        "errors": 7}


def test_a_clean_autocannon_run_has_no_errors():
    clean = {**AUTOCANNON, "errors": 0, "timeouts": 0, "non2xx": 0, "5xx": 0}
    assert parse_autocannon(json.dumps(clean))["errors"] == 0
