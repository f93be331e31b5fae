"""The near-duplicate maths of story clusters: normalised text, word shingles, MinHash signatures, LSH bands.

Pure: no database, no clock. A signature is datasketch's MinHash of the article's 5-word
shingles; its NUM_PERM values are cut into BANDS bands of ROWS rows, and each band is hashed to
one signed 64-bit integer, which is what the database indexes. Two articles whose shingle sets
have Jaccard similarity s share at least one band with probability 1 - (1 - s**ROWS)**BANDS:

    s      0.30   0.40   0.50   0.60   0.70   0.80
    P      0.23   0.56   0.87   0.99   1.00   1.00   (BANDS=32, ROWS=4)

The S-curve's midpoint, (1/BANDS)**(1/ROWS), is about 0.42: well below JOIN_THRESHOLD (0.6),
so that a copy near the threshold is nearly always found, and a copy missed by the bands is
usually still reached through another copy of its story. Copies of a wire story with light
edits score 0.53 to 1.0 on 5-word shingles; unrelated articles written from the same
boilerplate reach about 0.42, which the estimate's noise (about 0.044) can lift past 0.5: hence
0.6 (see docs/stories.md and bench/cluster_bench.py). A candidate found through a band is then
checked against JOIN_THRESHOLD with the signatures' estimated Jaccard, so a chance band
collision does not join two stories.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import re
import sys
import types
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from mediabeat.domain.stories import Candidate, Placement

if TYPE_CHECKING:
    import numpy as np
    from datasketch import MinHash

NUM_PERM = 128
BANDS = 32
ROWS = 4
SHINGLE_WORDS = 5
# Signatures agree on this share of their values (estimated Jaccard) before two articles are one story.
JOIN_THRESHOLD = 0.6
# Texts shorter than this many words get no bands: too little text to tell a copy from a coincidence.
MIN_WORDS = 40
SCHEME: Final = "affine32"  # datasketch 2.0 permutation scheme: values below 2**32, stored as uint32
# The MinHash permutations' seed: changing it changes every signature (then run `stories rebuild`).
SEED = 1
# The text sketched is at most this many words: long enough for any article, bounded cost per article.
MAX_WORDS = 5_000

_WORD = re.compile(r"\w+", re.UNICODE)

assert BANDS * ROWS == NUM_PERM


_INTEGRATE = "scipy.integrate"


def _real_integrate() -> types.ModuleType:
    """scipy.integrate itself, imported now if only the stand-in (or nothing) is there."""
    module = sys.modules.get(_INTEGRATE)
    if module is None or isinstance(module, _DeferredIntegrate):
        sys.modules.pop(_INTEGRATE, None)
        module = importlib.import_module(_INTEGRATE)
    return module


def _deferred_quad(*args: object, **kwargs: object) -> object:
    return _real_integrate().quad(*args, **kwargs)


class _DeferredIntegrate(types.ModuleType):
    """Stands for scipy.integrate while datasketch is imported: `quad` imports the real module when called."""

    quad = staticmethod(_deferred_quad)

    def __getattr__(self, name: str) -> object:
        if name.startswith("__"):  # the import system's own questions (__path__: is it a package?)
            raise AttributeError(name)
        return getattr(_real_integrate(), name)


@functools.cache
def _minhash_class() -> type[MinHash]:
    """datasketch's MinHash, imported without scipy.integrate.

    datasketch's package imports all its sketches, and its LSH indexes import scipy.integrate's
    `quad` when they are imported, to tune their bands when they are built. Clusters use
    MinHash alone and band in the database, but scipy.integrate (with scipy.special,
    scipy.linalg and BLAS) would take 45 MB in every crawling process. While datasketch is
    imported, scipy.integrate is a stand-in whose `quad` imports the real module on its first
    call; the stand-in is then taken out, so any later `import scipy.integrate` gets the real
    one. The MinHash itself is datasketch's, unchanged.

    Imported on the first sketch, not when a process starts: most CLI commands never sketch.
    """
    if "datasketch" not in sys.modules and _INTEGRATE not in sys.modules:
        stand_in = _DeferredIntegrate(_INTEGRATE)
        sys.modules[_INTEGRATE] = stand_in
        try:
            import datasketch  # noqa: F401
        finally:
            if sys.modules.get(_INTEGRATE) is stand_in:
                del sys.modules[_INTEGRATE]
    from datasketch import MinHash

    minhash: type[MinHash] = MinHash
    return minhash


@functools.cache
def _permutations() -> np.ndarray:
    """The MinHash permutations, built once per process: the costly part of a MinHash."""
    permutations: np.ndarray = _minhash_class()(num_perm=NUM_PERM, seed=SEED, scheme=SCHEME).permutations
    return permutations


@dataclass(frozen=True, slots=True)
class Sketch:
    """An article's MinHash signature (NUM_PERM unsigned 32-bit values) and its band hashes, or none if too short."""

    signature: bytes
    bands: tuple[int, ...]

    @property
    def clusterable(self) -> bool:
        return bool(self.bands)


def normalised_words(text: str) -> list[str]:
    """The words of `text`, NFKC-folded and lower-cased, punctuation and markup dropped."""
    return _WORD.findall(unicodedata.normalize("NFKC", text).casefold())[:MAX_WORDS]


def shingles(words: Sequence[str], size: int = SHINGLE_WORDS) -> set[bytes]:
    """The set of `size`-word runs of `words` (the whole text when it is shorter)."""
    if len(words) <= size:
        return {" ".join(words).encode()} if words else set()
    return {" ".join(words[i : i + size]).encode() for i in range(len(words) - size + 1)}


def sketch_text(text: str) -> Sketch:
    """The sketch of one article's text (title excluded: a copy often runs under another headline)."""
    import numpy as np

    words = normalised_words(text)
    minhash = _minhash_class()(num_perm=NUM_PERM, seed=SEED, permutations=_permutations(), scheme=SCHEME)
    minhash.update_batch(list(shingles(words)))
    signature = minhash.hashvalues.astype(np.uint32).tobytes()
    return Sketch(signature=signature, bands=band_hashes(signature) if len(words) >= MIN_WORDS else ())


def article_text(title: str | None, summary: str | None, text: str | None) -> str:
    """What is sketched: the body, or the summary when there is no body; the title only when there is neither."""
    return text or summary or title or ""


def band_hashes(signature: bytes) -> tuple[int, ...]:
    """One signed 64-bit hash per band of ROWS values (blake2b: the same in every process, unlike hash()).

    The band's number is hashed too, so equal values in two different bands do not collide: a
    batch's candidates are then one lookup of its hashes on (org_id, band_hash).
    """
    width = ROWS * 4
    return tuple(
        int.from_bytes(
            hashlib.blake2b(bytes([i]) + signature[i * width : (i + 1) * width], digest_size=8).digest(), signed=True
        )
        for i in range(BANDS)
    )


def similarity(a: bytes, b: bytes) -> float:
    """Estimated Jaccard similarity of two signatures: the share of their values that agree."""
    import numpy as np

    left, right = np.frombuffer(a, dtype=np.uint32), np.frombuffer(b, dtype=np.uint32)
    if left.shape != right.shape:
        return 0.0
    return float(np.count_nonzero(left == right)) / len(left)


def place(signature: bytes, candidates: Iterable[Candidate], threshold: float = JOIN_THRESHOLD) -> Placement:
    """Decide the cluster of a new article from its band candidates.

    It joins every cluster that holds at least one candidate at or above `threshold` (estimated
    Jaccard). When it links two or more clusters, they become one: the oldest (lowest id) keeps
    its id and absorbs the others. No candidate above the threshold: a new cluster of its own.
    """
    matched: dict[int, float] = {}
    for candidate in candidates:
        score = similarity(signature, candidate.signature)
        if score >= threshold:
            matched[candidate.cluster_id] = max(score, matched.get(candidate.cluster_id, 0.0))
    if not matched:
        return Placement(cluster_id=None, absorb=(), best=0.0)
    keep = min(matched)
    return Placement(cluster_id=keep, absorb=tuple(sorted(c for c in matched if c != keep)), best=max(matched.values()))
