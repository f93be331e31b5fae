"""A server or worker freezes what it built while starting, so full collections skip it (heap.settle)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
import uvicorn

from mediabeat import heap
from mediabeat.cli import serve_cmd


@pytest.fixture
def unfrozen() -> Iterator[None]:
    yield
    gc.unfreeze()  # the test process's objects go back to the collector


def test_settle_leaves_the_objects_alive_now_out_of_every_collection(unfrozen: None) -> None:
    marker: list[object] = []
    marker.append(marker)  # a cycle: only the collector could free it, and it walks it at every full collection
    assert any(o is marker for o in gc.get_objects())
    frozen = heap.settle()
    assert frozen >= 1 and frozen == gc.get_freeze_count()
    assert not any(o is marker for o in gc.get_objects())  # no generation holds it: no collection walks it
    gc.collect()
    assert marker[0] is marker


async def test_the_server_settles_once_it_listens(monkeypatch: pytest.MonkeyPatch, unfrozen: None) -> None:
    settled: list[bool] = []

    async def app(scope: dict[str, object], receive: object, send: object) -> None:  # never called
        raise AssertionError(scope)

    config = uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="off", log_config=None)
    server = serve_cmd.announcing_server(config, announcement="dashboard: here")
    monkeypatch.setattr(heap, "settle", lambda: settled.append(server.started) or 0)
    config.load()
    server.lifespan = config.lifespan_class(config)  # as uvicorn's serve() sets it up before startup()
    await server.startup()
    try:
        assert settled == [True]
    finally:
        await server.shutdown()
