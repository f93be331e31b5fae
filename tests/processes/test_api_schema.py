"""Schemathesis over the whole OpenAPI schema, against `mediabeat serve` on 127.0.0.1.

Bounded examples per operation keep it quick; it must find no 5xx and no response that breaks the schema.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from mediabeat.db import migrate
from mediabeat.testing import seed_api_fuzz_target
from tests.servers import free_port, wait_for_http

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("api-schema"), pytest.mark.timeout(300)]

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
# Revoking tokens or deactivating users could lock the fuzzer out of the rest of the schema;
# those operations have their own tests.
SKIPPED = {("DELETE", "/api/v1/tokens/{token_id}"), ("PATCH", "/api/v1/users/{user_id}")}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    path = Path(tmp_path_factory.mktemp("schema")) / "api.db"
    url = f"sqlite:///{path}"
    migrate.upgrade(url)
    token = asyncio.run(seed_api_fuzz_target(url, token_name="schemathesis"))
    port = free_port()
    env = {
        **os.environ,
        "MEDIABEAT_DATABASE_URL": url,
        "ENABLE_SCHEDULER": "false",
        "MEDIABEAT_LOG_LEVEL": "WARNING",
        "MEDIABEAT_CRAWLER_OFFLINE": "true",  # adding a feed fetches it: no fuzzed URL may be reached
        "MEDIABEAT_LOGIN_MAX_FAILURES": "1000",
        "MEDIABEAT_LOGIN_MAX_FAILURES_PER_IP": "1000",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "mediabeat", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_for_http(f"{base}/healthz", process)
        except AssertionError as exc:
            raise RuntimeError(f"{exc}: {process.stderr.read().decode() if process.stderr else ''}") from None
        yield base, token
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr:
            process.stderr.close()


@pytest.fixture(scope="module")
def api_schema(served: tuple[str, str]) -> schemathesis.BaseSchema:
    base, _ = served
    return schemathesis.openapi.from_url(f"{base}/openapi.json").exclude(
        method_regex="^(DELETE|PATCH)$", path_regex=r"^/api/v1/(tokens|users)/\{"
    )


def test_the_api_honours_its_schema(api_schema: schemathesis.BaseSchema, served: tuple[str, str]) -> None:
    """Every operation, valid and invalid examples: no 5xx, and every response matches the schema."""
    base, token = served
    failures: list[str] = []
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) > 30
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=10 if mode is GenerationMode.POSITIVE else 6,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                derandomize=True,
                database=None,
                phases=[Phase.explicit, Phase.generate],
            )
            def check(case: schemathesis.Case) -> None:
                case.call_and_validate(base_url=base, headers={"Authorization": f"Bearer {token}"}, checks=CHECKS)

            try:
                check()
            except Unsatisfiable:  # no invalid form exists (an operation without parameters)
                continue
            except Exception as exc:  # collect every operation's failure, then report them together
                failures.append(f"{operation.label} ({mode.value}): {str(exc)[:1500]}")
    assert not failures, "\n\n".join(failures)
