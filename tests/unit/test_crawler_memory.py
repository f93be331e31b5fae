"""What a crawling process holds: datasketch without scipy.integrate, one copy of justext's stop lists,
and freed page buffers given back to the system.

Each check runs in a fresh interpreter, since what matters is what a new process imports.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap


def run_fresh(code: str) -> dict[str, object]:
    """Run `code` in a new interpreter with this one's sys.path; it prints one JSON object."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": ":".join(p for p in sys.path if p), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    loaded: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return loaded


def test_sketches_do_not_import_scipy_integrate_and_lsh_still_gets_the_real_one() -> None:
    found = run_fresh(
        """
        import json, sys
        from mediabeat.stories import sketch
        text = " ".join(f"word{i}" for i in range(200))
        ours = sketch.sketch_text(text)
        after_sketch = "scipy.integrate" in sys.modules

        import numpy as np
        from datasketch import MinHash, MinHashLSH
        direct = MinHash(num_perm=sketch.NUM_PERM, seed=sketch.SEED, scheme=sketch.SCHEME)
        direct.update_batch(list(sketch.shingles(sketch.normalised_words(text))))
        same = direct.hashvalues.astype(np.uint32).tobytes() == ours.signature

        lsh = MinHashLSH(threshold=0.5, num_perm=128)  # tunes its bands with scipy.integrate.quad
        import scipy.integrate
        print(json.dumps({
            "after_sketch": after_sketch,
            "same_signature": same,
            "bands": [lsh.b, lsh.r],
            "real_module": hasattr(scipy.integrate, "quad_vec"),
        }))
        """
    )
    assert found["after_sketch"] is False
    assert found["same_signature"] is True
    assert found["bands"] == [25, 5]  # datasketch's optimum for 0.5 and 128 permutations, computed by scipy
    assert found["real_module"] is True


def test_an_earlier_scipy_integrate_import_is_left_alone() -> None:
    found = run_fresh(
        """
        import json, sys
        import scipy.integrate
        real = sys.modules["scipy.integrate"]
        from mediabeat.stories import sketch
        sketch.sketch_text("a few words of text")
        print(json.dumps({"kept": sys.modules["scipy.integrate"] is real}))
        """
    )
    assert found["kept"] is True


def test_justext_gets_one_stop_word_set_and_classifies_as_with_trafilaturas_own() -> None:
    found = run_fresh(
        """
        import json
        import lxml.html
        from justext.core import define_stoplist
        from justext.utils import get_stoplist, get_stoplists
        from trafilatura import external
        from mediabeat.crawler import articles

        body = "<p>" + " ".join(["The council said that it would not be able to meet the budget"] * 8) + "</p>"
        page = (
            "<html><body><nav><a href='/'>Home</a> | <a href='/a'>About</a></nav>"
            + body * 3
            + "<footer>Copyright 2026 All rights reserved</footer></body></html>"
        )
        articles.extract_article(page.encode(), "http://127.0.0.1/a")  # sets the stop list up
        ours = external.JT_STOPLIST
        with_ours = external.try_justext(lxml.html.fromstring(page), None, None)
        with_ours = [p.text for p in with_ours]
        cached = define_stoplist.cache_info().currsize

        external.JT_STOPLIST = None  # trafilatura's own: a tuple of every list's words
        with_theirs = [p.text for p in external.try_justext(lxml.html.fromstring(page), None, None)]
        words = frozenset(w.lower() for language in get_stoplists() for w in get_stoplist(language))
        print(json.dumps({
            "ours": type(ours).__name__,
            "cached": cached,
            "same_words": define_stoplist(ours) == words,
            "same_paragraphs": with_ours == with_theirs,
            "paragraphs": len(with_ours),
        }))
        """
    )
    assert found["ours"] == "_EveryStopList"
    assert found["cached"] == 1
    assert found["same_words"] is True
    assert found["same_paragraphs"] is True and found["paragraphs"] == 3


RETAINED = """
    import json
    from mediabeat.crawler import heap
    def rss_kb():
        return int(open("/proc/self/status").read().split("VmRSS:")[1].split()[0])
    limited = heap.limit_fragmentation() if LIMIT else False
    keep, blocks = [], []
    for _ in range(3):  # the dynamic threshold rises after the first large block is freed
        block = bytearray(300 * 1024)
        del block
    before = rss_kb()
    for n in range(200):  # page-sized buffers between small objects that stay
        blocks.append(b"x" * (300 * 1024))
        keep.append(bytearray(2048))  # above pymalloc's 512 bytes: from the same heap
    grew = rss_kb() - before
    blocks.clear()
    print(json.dumps({"limited": limited, "grew_mb": grew / 1024, "retained_mb": (rss_kb() - before) / 1024}))
"""


def test_freed_page_buffers_go_back_to_the_system_with_the_limit() -> None:
    limited = run_fresh(textwrap.dedent(RETAINED).replace("LIMIT", "True"))
    default = run_fresh(textwrap.dedent(RETAINED).replace("LIMIT", "False"))
    assert limited["limited"] is True
    assert float(str(limited["grew_mb"])) > 50 and float(str(default["grew_mb"])) > 50  # 200 x 300 KB, written
    assert float(str(limited["retained_mb"])) < 10 < 40 < float(str(default["retained_mb"]))
