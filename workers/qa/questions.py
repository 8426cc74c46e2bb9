"""What kind of question is it? (Decides the strategy in ``auto`` and the CoA workers' task.)"""

from __future__ import annotations

import re

_WHOLE = re.compile(
    r"\b(summari[sz]e|summary|summaries|overview|outline|main (points|ideas|themes|arguments)|"
    r"key (points|findings|takeaways)|gist|tl;?dr|whole|entire|overall|throughout|"
    r"what is (this|the) (document|text|book|report|essay) about|recap)\b",
    re.IGNORECASE,
)


def wants_whole_document(question: str) -> bool:
    """Summaries and whole-document questions need every part read (Chain-of-Agents)."""
    return bool(_WHOLE.search(question))
