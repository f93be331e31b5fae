"""Language identification of an article's text with py3langid, loaded once per process.

The model takes about 75 MB and a few seconds to load, so it is loaded in the process that
owns the extraction pool (once), not in every extraction worker; identifying a text costs
about a millisecond there.
"""

from __future__ import annotations

import threading
from typing import Any

# The first characters decide: the cost grows with the length, the answer hardly changes.
SAMPLE_CHARS = 3000


class TextLanguage:
    """`identify(text)` -> (ISO 639-1 code, confidence 0..1); the model is loaded by `load()` or on first use."""

    def __init__(self) -> None:
        self._identifier: Any = None
        self._lock = threading.Lock()

    def load(self) -> None:
        """Load the model (seconds of CPU: call it from a thread, not the event loop)."""
        with self._lock:
            if self._identifier is None:
                from py3langid.langid import MODEL_FILE, LanguageIdentifier

                self._identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)

    def identify(self, text: str) -> tuple[str | None, float]:
        if not text.strip():
            return None, 0.0
        self.load()
        language, confidence = self._identifier.classify(text[:SAMPLE_CHARS])
        return str(language), float(confidence)
