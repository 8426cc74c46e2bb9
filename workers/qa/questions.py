"""What kind of question is it? (Decides the strategy in ``auto`` and the CoA workers' task.)"""

from __future__ import annotations

import re

_WHOLE = re.compile(
    r"\b(summari[sz]e|summary|summaries|overview|outline|main (points|ideas|themes|arguments)|"
    r"key (points|findings|takeaways)|gist|tl;?dr|whole|entire|overall|throughout|"
    r"what(?:'s| is| are) (?:this|these|the)(?: (?:whole|entire|full|uploaded))? ?"
    r"(?:(?:document|text|book|report|essay|paper|article|story|file|transcript|contract|"
    r"chapter|letter|memo|thesis|study|speech|novel|collection)s?)? about|recap)\b",
    re.IGNORECASE,
)


def wants_whole_document(question: str) -> bool:
    """Summaries and whole-document questions need every part read (Chain-of-Agents)."""
    return bool(_WHOLE.search(question))
