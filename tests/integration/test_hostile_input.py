"""Every route in the OpenAPI schema, fed hostile values in each parameter: never a 5xx, always the error shape.

NUL bytes, lone surrogates, overlong strings, out-of-range numbers and dates go into each path,
query and body parameter in turn, the others kept at plausible values, as an admin with an API
token, over ASGI on each database. It is a test, not a fuzzing campaign (see `make fuzz`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from tests.integration.api_fixtures import ApiEnv

# Each hostile value as it goes into a URL (already percent-encoded) and into a JSON body (raw JSON text).
LONE_SURROGATE_URL = "%ED%A0%80"  # the CESU-8 bytes of U+D800: not UTF-8
HOSTILE: list[tuple[str, str, str]] = [
    ("nul", "a%00b", json.dumps("a\x00b")),
    ("surrogate", f"a{LONE_SURROGATE_URL}b", '"a\\ud800b"'),
    ("overlong", "x" * 10_000, json.dumps("x" * 100_000)),
    ("2**63", str(2**63), str(2**63)),
    ("-1", "-1", "-1"),
    ("10**30", str(10**30), str(10**30)),
    ("earliest", quote("0001-01-01T00:00:00+14:00", safe=""), json.dumps("0001-01-01T00:00:00+14:00")),
    ("latest", quote("9999-12-31T23:59:59-14:00", safe=""), json.dumps("9999-12-31T23:59:59-14:00")),
]
# Plausible values, so that a hostile value in one parameter gets past the checks of the others.
PLAUSIBLE: dict[str, Any] = {
    "url": "http://127.0.0.1:9/feed.xml",
    "email": "hostile@example.test",
    "password": "a-good-password-1",
    "cron": "@daily",
    "timezone": "UTC",
    "handler": "nightly_cleanup",
    "role": "member",
    "name": "hostile",
}
SKIPPED = {"/metrics"}  # Prometheus text, not JSON: its own tests cover it


@dataclass(frozen=True)
class Case:
    method: str
    path: str
    query: str
    body: str | None
    content_type: str | None

    def label(self) -> str:
        body = "" if self.body is None else f" body={self.body[:60]!r}"
        return f"{self.method} {self.path[:80]}?{self.query[:60]}{body}"


def _schema(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """A schema with $ref and a nullable anyOf resolved to the object it names."""
    if "$ref" in schema:
        return _schema(spec, spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]])
    for option in schema.get("anyOf", ()):
        if option.get("type") != "null":
            return _schema(spec, option)
    return schema


def _plausible(name: str, schema: dict[str, Any]) -> Any:
    if name in PLAUSIBLE:
        return PLAUSIBLE[name]
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    return {"integer": 1, "number": 1, "boolean": True, "array": [], "object": {}}.get(kind or "", "x")


@dataclass(frozen=True)
class Operation:
    """One route and method, with plausible values for its path parameters and JSON body."""

    method: str
    path: str
    parameters: list[tuple[str, str]]
    fields: dict[str, dict[str, Any]]
    raw_type: str | None  # a body that is not JSON (an OPML upload)

    def case(self, path_values: dict[str, str], query: str = "", body: str | None = None) -> Case:
        url = self.path
        for name, value in {**self.base_path(), **path_values}.items():
            url = url.replace("{" + name + "}", value)
        if body is None and self.fields:
            body = json.dumps(self.base_body())
        kind = "application/json" if self.fields else self.raw_type
        return Case(self.method.upper(), url, query, body, kind)

    def base_path(self) -> dict[str, str]:
        return {name: "1" for where, name in self.parameters if where == "path"}

    def base_body(self) -> dict[str, Any]:
        return {k: _plausible(k, v) for k, v in self.fields.items()}

    def body_with(self, name: str, json_value: str) -> str:
        """The plausible body with one field's value replaced by raw JSON text (a lone surrogate cannot be dumped)."""
        others = json.dumps({k: v for k, v in self.base_body().items() if k != name})
        return others[:-1] + (", " if len(others) > 2 else "") + f'"{name}": {json_value}}}'


def operations(spec: dict[str, Any]) -> Iterator[Operation]:
    for path, methods in spec["paths"].items():
        if path in SKIPPED:
            continue
        for method, operation in methods.items():
            parameters = [(p["in"], p["name"]) for p in operation.get("parameters", [])]
            content = operation.get("requestBody", {}).get("content", {})
            fields: dict[str, dict[str, Any]] = {}
            if "application/json" in content:
                body_schema = _schema(spec, content["application/json"]["schema"])
                fields = {k: _schema(spec, v) for k, v in body_schema.get("properties", {}).items()}
            raw_type = next((t for t in content if t != "application/json"), None)
            yield Operation(method, path, parameters, fields, raw_type)


def cases(spec: dict[str, Any]) -> Iterator[Case]:
    for operation in operations(spec):
        if not operation.parameters and not operation.fields and operation.raw_type is None:
            yield operation.case({})
        for _, url_value, json_value in HOSTILE:
            for where, name in operation.parameters:
                if where == "path":
                    yield operation.case({name: url_value})
                elif where == "query":
                    yield operation.case({}, query=f"{name}={url_value}")
            for name in operation.fields:
                yield operation.case({}, body=operation.body_with(name, json_value))
            if operation.raw_type is not None:
                yield operation.case({}, body=json_value)


def problems(case: Case, response: httpx.Response) -> str | None:
    if response.status_code >= 500:
        return f"{response.status_code} for {case.label()}: {response.text[:200]}"
    if response.status_code < 400:
        return None
    try:
        body = response.json()
    except ValueError:
        return f"{response.status_code} without a JSON body for {case.label()}: {response.text[:200]}"
    error = body.get("error") if isinstance(body, dict) else None
    if set(body) != {"error"} or not isinstance(error, dict) or set(error) != {"code", "message", "details"}:
        return f"{response.status_code} without the error shape for {case.label()}: {response.text[:200]}"
    if not isinstance(error["message"], str) or not error["message"]:
        return f"{response.status_code} without a message for {case.label()}"
    return None


async def test_hostile_values_in_every_parameter_of_every_route(api: ApiEnv) -> None:
    spec = api.app.openapi()
    found: list[str] = []
    sent = 0
    async with api.admin() as client:
        for case in cases(spec):
            headers = {"Content-Type": case.content_type} if case.content_type else {}
            url = case.path + (f"?{case.query}" if case.query else "")
            response = await client.request(case.method, url, content=case.body, headers=headers)
            sent += 1
            if (problem := problems(case, response)) is not None:
                found.append(problem)
    assert sent > 500, sent
    assert not found, f"{len(found)} of {sent} requests:\n" + "\n".join(found)
