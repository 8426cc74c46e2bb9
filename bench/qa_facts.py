"""Paraphrased facts of every kind, hidden in long documents of three registers, for the QA
quality benchmark (``bench.qa_quality``).

A fact sentence is worded unlike its question: only the subject's made-up name (the
*anchor*, e.g. "Belthorpe") is shared, so that the question has one answer in a document
holding several facts; the predicate and the noun are paraphrased ("The audit of the
Belthorpe depot was signed off by …" / "Who approved the inspection of the Belthorpe
warehouse?"). Fillers (names, firms, towns, dates, numbers, titles, codes) are drawn from a
seeded ``random.Random``. An *unanswerable* question asks about an anchor that appears
nowhere in the document (its fact is never inserted; the document still holds the other
facts, so a strategy cannot abstain merely because nothing stands out).

Registers: ``essays`` (Paul Graham essays), ``transcript`` (timestamped speaker turns made
of essay sentences) and ``report`` (LooGLE's encyclopaedic articles under headings).
"""

from __future__ import annotations

import ast
import json
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from workers.documents.chunking import sentence_spans
from workers.documents.synth import filler_text, load_essays

KINDS = ("person", "organisation", "place", "date", "weekday", "quantity", "title", "code")
SHAPES = {  # the question word of each kind (the table groups by kind)
    "person": "who",
    "organisation": "what",
    "place": "where",
    "date": "when",
    "weekday": "which day",
    "quantity": "how many",
    "title": "what is it called",
    "code": "code / pass key",
}
REGISTERS = ("essays", "transcript", "report")

# (fact, question) per kind: {a} is the anchor, {v} the value. Only {a} may be shared.
TEMPLATES: dict[str, tuple[tuple[str, str], ...]] = {
    "person": (
        ("The audit of the {a} depot was signed off by {v}.",
         "Who approved the inspection of the {a} warehouse?"),
        ("{v} has been steering the {a} choir since the spring.",
         "Who leads the {a} singing group?"),
        ("The {a} bridge was drawn up by an engineer named {v}.",
         "Who designed the {a} crossing?"),
    ),
    "organisation": (
        ("Catering at the {a} retreat was handled by {v}.",
         "What company supplied the food for the {a} getaway?"),
        ("The {a} turbines were built under contract by {v}.",
         "What firm manufactured the {a} generators?"),
        ("Money for the {a} excavation came from {v}.",
         "What organisation funded the {a} dig?"),
    ),
    "place": (
        ("The {a} quartet rehearses every week in {v}.",
         "Where does the {a} string ensemble practise?"),
        ("After the merger, the {a} team moved its offices to {v}.",
         "Where is the {a} group headquartered now?"),
        ("The {a} manuscript turned up in an attic in {v}.",
         "Where was the {a} document found?"),
    ),
    "date": (
        ("The {a} pier reopened to the public on {v}.",
         "When did the {a} jetty start welcoming visitors again?"),
        ("Builders wrapped up work on the {a} lighthouse on {v}.",
         "When was the {a} beacon tower completed?"),
        ("The {a} treaty was signed on {v}.",
         "When was the {a} agreement concluded?"),
    ),
    "weekday": (
        ("The {a} market only sets up its stalls on {v}s.",
         "Which day of the week can you shop at the {a} bazaar?"),
        ("Rubbish in the {a} district is collected every {v}.",
         "On which day are bins emptied in the {a} neighbourhood?"),
        ("The {a} reading club gathers each {v} evening.",
         "Which weekday does the {a} book circle meet?"),
    ),
    "quantity": (
        ("{v} volunteers turned up to clean the {a} beach.",
         "How many people helped tidy the {a} shore?"),
        ("The {a} orchard has {v} apple trees in it.",
         "How many fruit plants grow in the {a} grove?"),
        ("The {a} ferry can carry {v} passengers at once.",
         "How many travellers fit aboard the {a} boat?"),
    ),
    "title": (
        ("The boat moored at {a} harbour goes by the name {v}.",
         "What is the vessel at the {a} port called?"),
        ("The {a} band's debut record came out as {v}.",
         "What is the title of the {a} group's first album?"),
        ("Locals know the old {a} tavern as {v}.",
         "What is the historic {a} inn called?"),
    ),
    "code": (
        ("To open the {a} storeroom, key in {v} on the panel.",
         "What is the access code for the {a} supply room?"),
        ("The {a} shipment was logged under reference {v}.",
         "What is the tracking number of the {a} consignment?"),
        ("Whoever wants the {a} safe to open must enter {v} on its dial.",
         "What is the pass key for the {a} vault?"),
    ),
}

_FIRST = ("Margaret", "Tomasz", "Aiko", "Kwame", "Ingrid", "Rafael", "Leila", "Dmitri",
          "Priya", "Sven", "Oluwaseun", "Carmen", "Hiroshi", "Agnieszka", "Tariq", "Elodie")
_LAST = ("Oyelaran", "Brzezinski", "Takahara", "Mensah", "Lindqvist", "Quiroga", "Haddad",
         "Volkonsky", "Raghunathan", "Ekdahl", "Adeyemi", "Villalobos", "Murakami",
         "Wojcik", "Farouki", "Marchetti")
_ORG_A = ("Kestrel", "Amberline", "Northwold", "Bramblecote", "Silverfen", "Harrowgate",
          "Copperleaf", "Westmarch", "Tidewater", "Greystone")
_ORG_B = ("Provisions", "Engineering", "Holdings", "Foundation", "Trust", "Works",
          "Cooperative", "Industries", "Partners", "Society")
_PLACES = ("Tromso", "Valparaiso", "Ljubljana", "Mombasa", "Hobart", "Tbilisi", "Cusco",
           "Trondheim", "Bratislava", "Windhoek", "Kuching", "Reykjavik", "Zanzibar",
           "Asuncion", "Cagliari", "Galway")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_TITLE_A = ("Salt", "Amber", "Quiet", "Northern", "Copper", "Wandering", "Silver", "Hollow",
            "Crimson", "Distant")
_TITLE_B = ("Orchard", "Lantern", "Heron", "Meridian", "Tide", "Compass", "Harvest",
            "Kingfisher", "Sparrow", "Lighthouse")
_SYLLABLES_A = ("Bel", "Cor", "Dun", "Fal", "Gar", "Hal", "Kel", "Mar", "Nor", "Pen", "Quar",
                "Ros", "Tav", "Wil", "Yar", "Zel")
_SYLLABLES_B = ("thorpe", "wick", "mere", "stow", "brook", "combe", "ford", "garth", "holm",
                "ley", "minster", "wold")
_SPEAKERS = ("CHAIR", "MS OKAFOR", "MR LINDGREN", "DR SATO", "MS ALVAREZ", "MR BECKETT")
_INTERJECTIONS = ("Right.", "Okay, go on.", "Mm-hm.", "Yes.", "Sorry, could you repeat that?",
                  "Understood.", "Thank you.")
WORD = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True)
class Fact:
    kind: str
    anchor: str
    value: str
    sentence: str
    question: str
    accept: tuple[tuple[str, ...], ...]  # any one group of normalised tokens, all present

    def is_correct(self, answer: str) -> bool:
        return accepted(answer, self.accept)


@dataclass
class Question:
    id: str
    kind: str
    answerable: bool
    fact: Fact  # for an unanswerable one: the fact that is NOT in the document
    start: int = -1  # the fact's span in the document (answerable only)
    end: int = -1


@dataclass
class Document:
    register: str
    length: int
    text: str
    questions: list[Question] = field(default_factory=list)
    tokens: int = 0


def tokens_of(text: str) -> list[str]:
    """Lower-case alphanumeric tokens; digit groups joined ("1,250" → "1250"), ordinals
    plain ("21st" → "21")."""
    text = re.sub(r"(?<=\d)[,.](?=\d{3}\b)", "", text.lower())
    return WORD.findall(re.sub(r"(?<=\d)(?:st|nd|rd|th)\b", "", text))


def accepted(answer: str, accept: Sequence[Sequence[str]]) -> bool:
    words = set(tokens_of(answer))
    # "Tuesdays", "Tuesday's" count as "tuesday".
    words |= {w[:-1] for w in words if w.endswith("s")}
    return any(group and all(t in words for t in group) for group in accept)


def _anchor(rng: random.Random) -> str:
    return rng.choice(_SYLLABLES_A) + rng.choice(_SYLLABLES_B)


def _value(kind: str, rng: random.Random) -> tuple[str, tuple[tuple[str, ...], ...]]:
    """A filler value and the token groups that count as naming it."""
    if kind == "person":
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        return f"{first} {last}", ((last.lower(),),)
    if kind == "organisation":
        name = f"{rng.choice(_ORG_A)} {rng.choice(_ORG_B)}"
        return name, ((name.split()[0].lower(),),)
    if kind == "place":
        place = rng.choice(_PLACES)
        return place, ((place.lower(),),)
    if kind == "date":
        day, month, year = rng.randint(1, 28), rng.choice(_MONTHS), rng.randint(1962, 2021)
        return f"{day} {month} {year}", ((str(day), month.lower(), str(year)),)
    if kind == "weekday":
        day = rng.choice(_WEEKDAYS)
        return day, ((day.lower(),),)
    if kind == "quantity":
        n = rng.randint(13, 980)
        return str(n), ((str(n),),)
    if kind == "title":
        title = f"The {rng.choice(_TITLE_A)} {rng.choice(_TITLE_B)}"
        return title, (tuple(w.lower() for w in title.split()[1:]),)
    if kind == "code":
        if rng.random() < 0.5:
            code = str(rng.randint(100000, 999999))
            return code, ((code,),)
        letters = "".join(rng.choice("ABCDEFGHJKLMNPRSTUVWXYZ") for _ in range(2))
        code = f"{letters}-{rng.randint(1000, 9999)}"
        return code, (tuple(tokens_of(code)),)
    raise ValueError(f"unknown fact kind {kind!r}; choose from {KINDS}")


# Values that any long text holds somewhere (a weekday, a number): not required absent.
COMMON_VALUES = frozenset({"weekday", "quantity"})


def clashes(kind: str, anchor: str, value: str, text: str) -> bool:
    """Whether ``text`` (lower case) already holds the anchor, or a distinctive value."""
    return anchor.lower() in text or (kind not in COMMON_VALUES and value.lower() in text)


def make_fact(kind: str, rng: random.Random, avoid: str = "", template: int | None = None) -> Fact:
    """A fact of ``kind`` whose anchor (and distinctive value) do not occur in ``avoid``."""
    low = avoid.lower()
    for _ in range(200):
        anchor = _anchor(rng)
        value, accept = _value(kind, rng)
        if not clashes(kind, anchor, value, low):
            break
    else:  # pragma: no cover - 16 × 12 anchors against one text
        raise RuntimeError("no unused anchor left for this text")
    templates = TEMPLATES[kind]
    fact, question = templates[rng.randrange(len(templates)) if template is None else template]
    sentence = fact.format(a=anchor, v=value)
    return Fact(kind, anchor, value, sentence[0].upper() + sentence[1:],
                question.format(a=anchor), accept)


# -- registers ----------------------------------------------------------------------------


def _essays_text(n_chars: int, rng: random.Random, sources: dict) -> str:
    return filler_text(n_chars, rng, sources["essays"])


def _transcript_text(n_chars: int, rng: random.Random, sources: dict) -> str:
    """Timestamped speaker turns of one to three essay sentences, with short interjections."""
    prose = filler_text(n_chars + 2000, rng, sources["essays"])
    sentences = [prose[s:e] for s, e in sentence_spans(prose)]
    lines, size, i, clock = [], 0, 0, rng.randrange(3600)
    while size < n_chars and i < len(sentences):
        if rng.random() < 0.15:
            turn = rng.choice(_INTERJECTIONS)
        else:
            take = rng.randint(1, 3)
            turn = " ".join(sentences[i : i + take])
            i += take
        clock += rng.randint(4, 40)
        stamp = f"[{clock // 3600:02d}:{clock // 60 % 60:02d}:{clock % 60:02d}]"
        lines.append(f"{stamp} {rng.choice(_SPEAKERS)}: {turn}")
        size += len(lines[-1]) + 1
    return "\n".join(lines)


def _report_text(n_chars: int, rng: random.Random, sources: dict) -> str:
    """LooGLE's articles, each under a heading, from a random one on (cycled when short)."""
    articles = sources["articles"]
    if not articles:
        return _essays_text(n_chars, rng, sources)
    parts, size, i = [], 0, rng.randrange(len(articles))
    while size < n_chars:
        title, body = articles[i % len(articles)]
        paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n|\n(?=[A-Z])", body)]
        parts.append(f"## {title}\n\n" + "\n\n".join(p for p in paragraphs if p))
        size += len(parts[-1]) + 2
        i += 1
    text = "\n\n".join(parts)
    end = text.rfind(". ", 0, n_chars)
    return text[: end + 1] if end > n_chars // 2 else text[:n_chars]


FILLERS: dict[str, Callable[[int, random.Random, dict], str]] = {
    "essays": _essays_text,
    "transcript": _transcript_text,
    "report": _report_text,
}


def load_articles(loogle: Path) -> list[tuple[str, str]]:
    """(title, text) of LooGLE's documents other than the long-dependency QA ones (those
    are asked about as themselves)."""
    out: list[tuple[str, str]] = []
    for name in ("shortdep_qa.jsonl", "longdep_summarization.jsonl"):
        path = loogle / name
        if path.exists():
            for line in path.read_text().splitlines():
                if line.strip():
                    row = json.loads(line)
                    out.append((str(row.get("title", "")), str(row["input"])))
    return out


def load_sources(data: Path) -> dict:
    return {"essays": load_essays(data / "pg_essays"), "articles": load_articles(data / "loogle")}


def _insertion_points(text: str, register: str) -> list[int]:
    if register == "transcript":
        return [0] + [m.end() for m in re.finditer(r"\n", text)]
    return [s for s, _ in sentence_spans(text)]


def _sized_filler(register: str, tokens: int, rng: random.Random, sources: dict,
                  count: Callable[[str], int], reserve: int) -> str:
    seed = rng.randrange(1 << 30)
    room = max(50, tokens - reserve)
    chars = room * 4
    text = FILLERS[register](chars, random.Random(seed), sources)
    for _ in range(2):  # rescale by the measured characters per token
        measured = count(text)
        if abs(measured - room) <= max(20, room // 50):
            break
        chars = max(400, int(len(text) * room / max(1, measured)))
        text = FILLERS[register](chars, random.Random(seed), sources)
    return text


def build_document(
    register: str,
    tokens: int,
    answerable: Sequence[str],
    unanswerable: Sequence[str],
    rng: random.Random,
    sources: dict,
    count_tokens: Callable[[str], int] | None = None,
    prefix: str = "",
) -> Document:
    """A document of about ``tokens`` in ``register`` holding one fact of each kind in
    ``answerable`` at random depths, and questions for those and for ``unanswerable``
    kinds (facts not inserted)."""
    count = count_tokens or (lambda t: max(1, len(t) // 4))
    answer_facts = [make_fact(k, rng) for k in answerable]
    reserve = sum(count(f.sentence) + 8 for f in answer_facts)
    text = _sized_filler(register, tokens, rng, sources, count, reserve)
    # Redraw any fact whose anchor or value the filler happens to contain.
    low = text.lower()
    answer_facts = [make_fact(f.kind, rng, text) if clashes(f.kind, f.anchor, f.value, low)
                    else f for f in answer_facts]
    points = _insertion_points(text, register)
    chosen = sorted(rng.sample(range(len(points)), min(len(answer_facts), len(points))))
    pieces, last, inserted = [], 0, []
    for fact, p in zip(answer_facts, chosen, strict=False):
        at = points[p]
        pieces.append(text[last:at])
        offset = sum(len(x) for x in pieces)
        if register == "transcript":
            stamp = text[at : at + 10] if text[at : at + 1] == "[" else "[00:00:00]"
            lead = f"{stamp} {rng.choice(_SPEAKERS)}: "
            pieces.append(lead + fact.sentence + "\n")
            inserted.append((fact, offset + len(lead)))
        else:
            pieces.append(fact.sentence + " ")
            inserted.append((fact, offset))
        last = at
    pieces.append(text[last:])
    full = "".join(pieces)
    doc = Document(register, tokens, full, tokens=count(full))
    for n, (fact, start) in enumerate(inserted):
        doc.questions.append(Question(f"{prefix}{register}-{tokens}-a{n}", fact.kind, True,
                                      fact, start, start + len(fact.sentence)))
    used = {f.anchor for f in answer_facts}
    for n, kind in enumerate(unanswerable):
        fact = make_fact(kind, rng, full)
        while fact.anchor in used:
            fact = make_fact(kind, rng, full)
        used.add(fact.anchor)
        doc.questions.append(Question(f"{prefix}{register}-{tokens}-u{n}", kind, False, fact))
    return doc


def plan_documents(
    lengths: Sequence[int],
    registers: Sequence[str],
    kinds: Sequence[str],
    per_kind: int,
    unanswerable: int,
    seed: int,
    sources: dict,
    count_tokens: Callable[[str], int] | None = None,
) -> list[Document]:
    """Per length: ``per_kind`` answerable questions of every kind and ``unanswerable``
    questions (kinds in turn), dealt over the registers in turn, one document per register."""
    docs = []
    for length in lengths:
        rng = random.Random(f"{seed}-{length}")
        answer_by: dict[str, list[str]] = {r: [] for r in registers}
        missing_by: dict[str, list[str]] = {r: [] for r in registers}
        for i, kind in enumerate(k for _ in range(per_kind) for k in kinds):
            answer_by[registers[i % len(registers)]].append(kind)
        for i in range(unanswerable):
            missing_by[registers[(i + 1) % len(registers)]].append(kinds[i % len(kinds)])
        for register in registers:
            if answer_by[register] or missing_by[register]:
                docs.append(build_document(register, length, answer_by[register],
                                           missing_by[register], rng, sources, count_tokens))
    return docs


# -- LooGLE long-dependency QA -------------------------------------------------------------

_OPTION = re.compile(r"^\s*(\d+)\s*[.)]\s*(.+?)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class LoogleQuestion:
    document: int
    title: str
    question: str
    gold: str
    alternatives: tuple[str, ...]  # the gold, and the option text of a numbered choice
    evidence: tuple[str, ...]


def load_loogle(path: Path, documents: int = 0, questions: int = 0) -> tuple[
        list[tuple[str, str]], list[LoogleQuestion]]:
    """LooGLE long-dependency QA: the documents (title, text) and their questions, the
    first ``questions`` of each of the first ``documents`` (0: all)."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    docs, out = [], []
    for d, row in enumerate(rows[: documents or None]):
        docs.append((str(row["title"]), str(row["input"])))
        pairs = row["qa_pairs"]
        pairs = ast.literal_eval(pairs) if isinstance(pairs, str) else pairs
        for qa in pairs[: questions or None]:
            gold = str(qa["A"]).strip()
            alts = [gold]
            options = dict(_OPTION.findall(str(qa["Q"])))
            if gold.rstrip(".") in options:  # "3" naming the third option
                alts.append(options[gold.rstrip(".")])
            evidence = qa.get("S") or []
            evidence = [evidence] if isinstance(evidence, str) else evidence
            out.append(LoogleQuestion(d, docs[-1][0], str(qa["Q"]), gold, tuple(alts),
                                      tuple(str(e) for e in evidence if str(e).strip())))
    return docs, out
