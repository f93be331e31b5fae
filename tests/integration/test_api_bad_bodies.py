"""A body the API cannot read is a 422 that says so in words, not in the validator's."""

from __future__ import annotations

from tests.integration.api_fixtures import ADMIN_EMAIL, ApiEnv, assert_error

LOGIN = "/api/v1/auth/login"


async def test_malformed_json_is_named_with_where_it_breaks(api: ApiEnv) -> None:
    async with api.client() as client:
        response = await client.post(
            LOGIN, content=b'{"email": "admin@example.test",', headers={"content-type": "application/json"}
        )
    error = assert_error(response, 422, "invalid")
    assert error["message"] == "invalid input: body: not valid JSON at position 31"
    assert error["details"] == [{"field": "body", "message": "not valid JSON at position 31", "type": "json_invalid"}]


async def test_a_body_that_is_not_a_json_object_says_so(api: ApiEnv) -> None:
    async with api.client() as client:
        as_text = await client.post(LOGIN, content=b"hello", headers={"content-type": "text/plain"})
        as_form = await client.post(LOGIN, data={"email": ADMIN_EMAIL, "password": "x"})
        as_list = await client.post(LOGIN, json=[ADMIN_EMAIL, "x"])
    for response in (as_text, as_form, as_list):
        error = assert_error(response, 422, "invalid")
        assert error["message"] == "invalid input: body: must be a JSON object", response.text
        assert error["details"][0]["field"] == "body"


async def test_a_missing_field_is_still_named(api: ApiEnv) -> None:
    async with api.client() as client:
        response = await client.post(LOGIN, json={"email": ADMIN_EMAIL})
    error = assert_error(response, 422, "invalid")
    assert error["message"] == "invalid input: password: is required"
