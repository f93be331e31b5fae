"""Language identification of an article's text with CLD3 (Google's Compact Language Detector v3, `cld3-py`).

CLD3 is a small neural network compiled into its extension (about 4 MB in memory, nothing to
load), so it runs in the process that owns the extraction pool: identifying a text there costs
under a millisecond. It replaced py3langid, whose model took about 75 MB of every crawling
process: on the corpus of docs/benchmarks.md the two agree on 918 of 920 texts' final language.
"""

from __future__ import annotations

import threading
from typing import Any

# The first characters decide: the cost grows with the length, the answer hardly changes.
SAMPLE_CHARS = 3000
# CLD3 reads at most this many bytes of the sample (its letters, after it drops digits,
# punctuation and markup); below MIN_BYTES of letters it answers "und" (unknown).
MAX_BYTES = 1000
MIN_BYTES = 20
UNKNOWN = "und"
# CLD3's codes that differ from the ISO 639-1 code the rest of the project uses.
ISO_639_1 = {"iw": "he", "fil": "tl"}


def iso_code(cld3_code: str) -> str | None:
    """CLD3's code as ISO 639-1: "iw" -> "he", a script suffix dropped ("ru-Latn" -> "ru"), "und" -> None."""
    base = cld3_code.split("-", 1)[0].lower()
    if not base or base == UNKNOWN:
        return None
    return ISO_639_1.get(base, base)


class TextLanguage:
    """`identify(text)` -> (ISO 639-1 code, confidence 0..1); the identifier is made by `load()` or on first use."""

    def __init__(self) -> None:
        self._identifier: Any = None
        self._lock = threading.Lock()

    def load(self) -> None:
        """Make the identifier (instant: the model is compiled into the extension)."""
        with self._lock:
            if self._identifier is None:
                import gcld3  # the module of the cld3-py distribution

                self._identifier = gcld3.NNetLanguageIdentifier(min_num_bytes=MIN_BYTES, max_num_bytes=MAX_BYTES)

    def identify(self, text: str) -> tuple[str | None, float]:
        if not text.strip():
            return None, 0.0
        self.load()
        with self._lock:  # one identifier, which keeps its state between calls: one text at a time
            result = self._identifier.FindLanguage(text=text[:SAMPLE_CHARS])
        code = iso_code(str(result.language))
        return code, float(result.probability) if code else 0.0
