"""The real-page corpus for the crawler benchmark: where it is, unpacking it, and scoring extractions on its snippets.

The corpus (923 pages from trafilatura's evaluation set, with snippets a good extraction
must and must not contain) lives in `../shared/corpus/` beside the project and is never
copied into it: it is unpacked into a temporary folder for the run and removed after.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
# A checkout sits beside `shared/`; a git worktree (under wt/) sits one level deeper.
CORPUS_CANDIDATES = (PROJECT.parent / "shared" / "corpus", PROJECT.parent.parent / "shared" / "corpus")


def find_corpus(given: str | None) -> Path | None:
    """The corpus folder (the one holding `unpack`), or None when it is not on this machine."""
    candidates = [Path(given)] if given else list(CORPUS_CANDIDATES)
    return next((c for c in candidates if (c / "unpack").is_file()), None)


def unpack(corpus: Path, dest: Path) -> tuple[Path, dict[str, dict[str, object]]]:
    """Unpack the corpus into `dest`: the folder of pages and the snippets, keyed by page file name."""
    subprocess.run([str(corpus / "unpack"), str(dest)], check=True, stdout=subprocess.DEVNULL)
    pages = dest / "eval"
    evaldata = json.loads((dest / "evaldata.json").read_text(encoding="utf-8"))
    snippets = {
        entry["file"]: {"url": url, **entry} for url, entry in evaldata.items() if (pages / entry["file"]).is_file()
    }
    return pages, snippets


def _normalise(text: str) -> str:
    return " ".join(text.split())


@dataclass(frozen=True, slots=True)
class Quality:
    """Snippet counts over a set of pages: `with` found (true positives), `without` found (false positives)."""

    pages: int
    with_total: int
    with_found: int
    without_total: int
    without_found: int

    @property
    def recall(self) -> float:
        return self.with_found / self.with_total if self.with_total else 0.0

    @property
    def avoided(self) -> float:
        return 1 - self.without_found / self.without_total if self.without_total else 1.0

    @property
    def precision(self) -> float:
        found = self.with_found + self.without_found
        return self.with_found / found if found else 0.0

    def __str__(self) -> str:
        return (
            f"with found {self.recall:.1%} ({self.with_found}/{self.with_total}), without avoided "
            f"{self.avoided:.1%}, precision {self.precision:.3f}, recall {self.recall:.3f}"
        )


def score(texts: Mapping[str, str | None], snippets: Mapping[str, Mapping[str, object]]) -> Quality:
    """Score the extracted `texts` (by page file; a missing page counts as an empty extraction)."""
    with_total = with_found = without_total = without_found = 0
    for name, entry in snippets.items():
        text = _normalise(texts.get(name) or "")
        wanted = _strings(entry.get("with"))
        unwanted = _strings(entry.get("without"))
        with_total += len(wanted)
        with_found += sum(1 for s in wanted if _normalise(s) in text)
        without_total += len(unwanted)
        without_found += sum(1 for s in unwanted if _normalise(s) in text)
    return Quality(len(snippets), with_total, with_found, without_total, without_found)


def _strings(value: object) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


Extractor = Callable[[bytes, str], str | None]


def extract_all(pages: Path, names: Iterable[str], extract: Extractor) -> dict[str, str | None]:
    """Run `extract(html, url)` over the named pages (in this process)."""
    return {name: extract((pages / name).read_bytes(), f"http://127.0.0.2/p/{name}") for name in names}


def trafilatura_default(html: bytes, url: str) -> str | None:
    """trafilatura's default settings, the quality baseline."""
    import trafilatura

    result: str | None = trafilatura.extract(html)
    return result
