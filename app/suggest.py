"""Closest known names for an unknown value ("Flamengp" -> "Flamengo")."""

import difflib
import unicodedata
from collections.abc import Sequence


def _fold(text: str) -> str:
    # Accents and case are the usual typos in team names ("Sao Paulo" for "São Paulo").
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold().strip()


class Suggester:
    """Ranks the allowed values of one enum field by similarity to an unknown value."""

    def __init__(self, allowed: Sequence[str], limit: int = 3) -> None:
        self._limit = limit
        self._by_folded: dict[str, list[str]] = {}
        for value in allowed:
            self._by_folded.setdefault(_fold(value), []).append(value)

    def suggest(self, value: str) -> list[str]:
        folded = _fold(value)
        if folded in self._by_folded:
            return self._by_folded[folded][: self._limit]
        close = difflib.get_close_matches(folded, self._by_folded, n=self._limit, cutoff=0.6)
        if not close:
            # Prefixes and fragments ("Atletico" for "Atlético Mineiro") miss the ratio cutoff.
            close = [f for f in self._by_folded if folded and folded in f][: self._limit]
        return [name for f in close for name in self._by_folded[f]][: self._limit]
