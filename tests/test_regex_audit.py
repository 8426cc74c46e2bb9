"""Regex audit (issue 16): no regex that sees document text, questions or model output
backtracks into super-linear time.

Every module under ``workers/`` and ``apps/`` is imported; every compiled pattern it holds
at module level (also in lists, dicts and class bodies) and every literal pattern passed to
``re.<fn>(...)`` inside a function (found in the source by ``ast``) is run with ``finditer``
over adversarial texts built from the pattern's own literals and character classes plus a
fixed palette: 50,000-character runs of one unit, each followed by a character that makes
the match fail. A per-call alarm (``sre`` checks signals while matching) stops a call after
``BOUND`` seconds, so one bad pattern costs seconds, not hours. Patterns built at run time
from escaped words (a few call sites, listed in ``DYNAMIC``) are covered by explicit cases.

``python -m tests.test_regex_audit`` prints the counts and the slowest calls (docs/security.md).
"""

from __future__ import annotations

import ast
import importlib
import pathlib
import re
import signal
import time
from re import _constants as C  # noqa: N812
from re import _parser

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
N = 50_000
BOUND = 2.0  # seconds per pattern per input; a quadratic pattern takes minutes at N
PALETTE = [" ", "\t", "\n", ".", "1", "a", "A", "Aaa ", "!", ",", "<", ">", "-", "`", "#", "*",
           "_", "[", "]", '"', "'", "“", "a ", "A. ", "1, ", "1,", "1.", "a-", "\r\n", "…"]
TAILS = ["", "\x00", "x"]
_FUNCS = {"compile": 1, "search": 2, "match": 2, "fullmatch": 2, "findall": 2, "finditer": 2,
          "split": 3, "sub": 4, "subn": 4}

# Patterns built from escaped words at run time: each is a literal (escaped) word with
# lookarounds, or words joined by \s+; covered by test_dynamic_patterns below.
DYNAMIC = {
    ("workers/qa/answering.py", "search"), ("workers/qa/extract.py", "search"),
    ("workers/qa/haystack.py", "search"), ("workers/qa/citations.py", "compile"),
    ("workers/qa/citations.py", "search"), ("workers/qa/grounding.py", "compile"),
    ("workers/qa/grounding_words.py", "compile"),
    ("workers/qa/grounding.py", "search"), ("workers/scope/keywords.py", "search"),
    ("apps/documents/search.py", "compile"),
}


def _modules() -> list[str]:
    names = []
    for base in ("workers", "apps"):
        for path in sorted((ROOT / base).rglob("*.py")):
            rel = path.relative_to(ROOT)
            if "migrations" in rel.parts:
                continue
            name = ".".join(rel.with_suffix("").parts)
            names.append(name.removesuffix(".__init__"))
    return names


def _walk(obj, where: str, out: dict, depth: int = 0) -> None:
    if isinstance(obj, re.Pattern):
        out.setdefault((obj.pattern, obj.flags), where)
    elif depth < 2 and isinstance(obj, list | tuple | set | frozenset):
        for i, item in enumerate(obj):
            _walk(item, f"{where}[{i}]", out, depth + 1)
    elif depth < 2 and isinstance(obj, dict):
        for key, item in obj.items():
            _walk(item, f"{where}[{key!r}]", out, depth + 1)
    elif depth == 0 and isinstance(obj, type):
        for key, item in vars(obj).items():
            _walk(item, f"{where}.{key}", out, depth + 1)


def _flags(node) -> int:
    if node is None:
        return 0
    return eval(compile(ast.Expression(node), "<flags>", "eval"), {"re": re})  # noqa: S307


def _source_patterns() -> tuple[dict, set]:
    """Literal patterns of ``re.<fn>(...)`` calls anywhere in the source; the dynamic sites."""
    literal, dynamic = {}, set()
    for base in ("workers", "apps"):
        for path in sorted((ROOT / base).rglob("*.py")):
            rel = str(path.relative_to(ROOT))
            if "/migrations/" in rel:
                continue
            tree = ast.parse(path.read_text())
            inside = {id(n) for f in ast.walk(tree) if isinstance(f, ast.FunctionDef | ast.Lambda)
                      for n in ast.walk(f)}
            for node in ast.walk(tree):
                if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                        and isinstance(node.func.value, ast.Name) and node.func.value.id == "re"
                        and node.func.attr in _FUNCS and node.args):
                    continue
                first = node.args[0]
                if isinstance(first, ast.Constant) and isinstance(first.value, str | bytes):
                    pos = _FUNCS[node.func.attr]
                    flag = next((k.value for k in node.keywords if k.arg == "flags"),
                                node.args[pos] if len(node.args) > pos else None)
                    pattern = re.compile(first.value, _flags(flag))
                    literal.setdefault((pattern.pattern, pattern.flags), f"{rel}:{node.lineno}")
                elif id(node) in inside:  # a module-level one is collected from the module
                    dynamic.add((rel, node.func.attr))
    return literal, dynamic


def all_patterns() -> dict:
    """{(pattern, flags): where} over module-level objects and literal calls in the source."""
    found: dict = {}
    for name in _modules():
        module = importlib.import_module(name)
        for key, value in vars(module).items():
            if isinstance(value, type) and value.__module__ != name:
                continue
            _walk(value, f"{name}.{key}", found)
    literal, _ = _source_patterns()
    for key, where in literal.items():
        found.setdefault(key, where)
    return found


def _classes(tree, lits: set, reps: set, words: set) -> None:
    """Collect the pattern's literal characters, literal strings and one member of each class."""
    run = []
    for op, av in tree:
        if op is C.LITERAL:
            run.append(chr(av))
            continue
        if len(run) > 1:
            words.add("".join(run))
        run = []
        if op is C.IN:
            for item_op, item in av:
                if item_op is C.LITERAL:
                    lits.add(chr(item))
                elif item_op is C.RANGE:
                    lits.update({chr(item[0]), chr(item[1])})
                elif item_op is C.CATEGORY:
                    reps.add({"CATEGORY_DIGIT": "7", "CATEGORY_SPACE": " "}.get(str(item), "b"))
        elif op in (C.MAX_REPEAT, C.MIN_REPEAT, C.POSSESSIVE_REPEAT):
            _classes(av[2], lits, reps, words)
        elif op is C.SUBPATTERN:
            _classes(av[3], lits, reps, words)
        elif op is C.ATOMIC_GROUP:
            _classes(av, lits, reps, words)
        elif op is C.BRANCH:
            for branch in av[1]:
                _classes(branch, lits, reps, words)
        elif op in (C.ASSERT, C.ASSERT_NOT):
            _classes(av[1], lits, reps, words)
    if len(run) > 1:
        words.add("".join(run))
    lits.update(run)


def adversarial_inputs(pattern: re.Pattern) -> list:
    """Runs of ~N characters of each unit (the palette, the pattern's literals and class
    members, its shortest literal words alone and followed by a space or a digit), each with
    a failing tail; and each run after a start that can lead in (a digit, a word, a literal
    word of the pattern) so that repeats later in the pattern are reached."""
    source = pattern.pattern
    text = source.decode("latin-1") if isinstance(source, bytes) else source
    lits, reps, words = set(), set(), set()
    _classes(_parser.parse(text, pattern.flags & ~re.DEBUG), lits, reps, words)
    words = sorted(words, key=lambda w: (len(w), w))[:8]
    units = set(PALETTE) | lits | reps
    for word in words:
        units.update({word, word + " ", word + "1"})
    inputs = []
    for unit in sorted(units):
        body = unit * (N // len(unit) + 1)
        inputs.extend(body + tail for tail in TAILS)
        inputs.extend(lead + body + "\x00" for lead in ["1", "1 x", *words[:3]])
    if isinstance(source, bytes):
        inputs = [s.encode("utf-8") for s in inputs]
    return inputs


class _Slow(Exception):
    pass


def _alarm(signum, frame):
    raise _Slow


def time_pattern(pattern: re.Pattern, inputs) -> tuple[float, object]:
    """The slowest input's time (BOUND + 1 when the alarm stopped it) and that input."""
    worst, worst_input = 0.0, None
    previous = signal.signal(signal.SIGALRM, _alarm)
    try:
        for text in inputs:
            started = time.perf_counter()
            signal.setitimer(signal.ITIMER_REAL, BOUND)
            try:
                for _ in pattern.finditer(text):
                    pass
                took = time.perf_counter() - started
            except _Slow:
                return BOUND + 1, text
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            if took > worst:
                worst, worst_input = took, text
    finally:
        signal.signal(signal.SIGALRM, previous)
    return worst, worst_input


def _describe(text) -> str:
    return repr(text[:24]) + f"… ({len(text):,} chars) …" + repr(text[-6:])


def audit() -> tuple[int, list]:
    patterns = all_patterns()
    slow = []
    for (source, flags), where in patterns.items():
        pattern = re.compile(source, flags)
        took, text = time_pattern(pattern, adversarial_inputs(pattern))
        if took > BOUND:
            slow.append(f"{where}: {source!r} took over {BOUND} s on {_describe(text)}")
    return len(patterns), slow


def test_collector_finds_the_known_patterns():
    """The collection is not empty by accident: patterns from each kind of place are in it."""
    wheres = set(all_patterns().values())
    for expected in ("workers.textstats._SENTENCE_END", "workers.documents.sniff._MD_SIGNALS[5]",
                     "workers.writing.plan._LINE", "apps.documents.search._WORD"):
        assert expected in wheres
    assert any(w.startswith("workers/writing/plan.py:") for w in wheres)


def test_the_audit_catches_a_quadratic_pattern():
    """The inputs and the alarm do find backtracking: the classic shapes (a repeat that
    fails at the end of a run and is retried from each position of it; a lazy group
    that rescans what follows at each step, as plan lines did) are caught."""
    old_plan_tail = r"^\d+\s*(?P<point>.*?)(?:[\s,]*(?P<count>\d[\d,]*)\s*words?\s*)?$"
    for bad in (r"\s*\S+\s*", r"(\d{2,})[A-Z]", r"[.!?]+(?=\s|$)", old_plan_tail):
        pattern = re.compile(bad)
        took, _ = time_pattern(pattern, adversarial_inputs(pattern))
        assert took > BOUND, bad


def test_every_regex_runs_in_linear_time():
    count, slow = audit()
    assert count > 50
    assert not slow, "\n".join(slow)


def test_every_dynamic_pattern_is_listed():
    """A new regex built at run time must get a case in test_dynamic_patterns."""
    _, dynamic = _source_patterns()
    assert dynamic <= DYNAMIC, f"not covered: {dynamic - DYNAMIC}"


@pytest.mark.parametrize("key", ["1,1,1,1,1", "a-b-c", "1.5", "A" * 200, "1-" * 500 + "1"])
def test_dynamic_patterns(key):
    """The run-time shapes: an escaped key between word lookarounds (answering, extract,
    citations, grounding, haystack), a prefix form (grounding), words joined by \\s+
    (citations.locate, keywords.contains), the highlight alternation (search); over 1 MB of
    near-misses each ends in bounded time (at worst the key's length times the text's)."""
    from apps.documents.search import highlight_terms
    from workers.scope.keywords import contains

    near = (key[:-1] + "\x00 ") * (1_000_000 // len(key))
    words = " ".join([key] * 3) + " zz"
    shapes = [rf"(?<![\w]){re.escape(key)}(?![\w])", rf"(?<!\w){re.escape(key)}",
              rf"(?<!\d){re.escape(key)}(?!\d)", r"\s+".join(re.escape(w) for w in words.split())]
    for shape in shapes:
        took, _ = time_pattern(re.compile(shape, re.IGNORECASE), [near, " " * N + "x"])
        assert took < BOUND, shape
    started = time.perf_counter()
    assert not contains(near, words)
    assert "<mark>" not in highlight_terms(near, (key + "zz", "zz"))
    assert time.perf_counter() - started < BOUND


if __name__ == "__main__":
    import django

    django.setup()
    started = time.perf_counter()
    count, slow = audit()
    print(f"{count} patterns, {len(slow)} slow, {time.perf_counter() - started:.1f} s")
    print("\n".join(slow))
