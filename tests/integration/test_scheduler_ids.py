"""Out-of-range ids and instants in the scheduler's API and pages: a 404 or 422, never a 500, on both databases."""

from __future__ import annotations

from mediabeat.domain.ids import MAX_ID
from tests.integration.api_fixtures import ApiEnv, assert_error
from tests.integration.test_dashboard_pages import signed_in

B = "/api/v1/scheduler"
HUGE = "99999999999999999999"  # past any BIGINT: an OverflowError if it reached the SQLite driver


async def test_api_answers_out_of_range_ids_with_the_error_shape(api: ApiEnv) -> None:
    async with api.admin() as client:
        for path in (f"{B}/runs/{HUGE}", f"{B}/tasks/{HUGE}", f"{B}/tasks/{HUGE}/upcoming", f"{B}/runs/{MAX_ID + 1}"):
            assert_error(await client.get(path), 422)
        assert_error(await client.post(f"{B}/tasks/{HUGE}/toggle"), 422)
        assert_error(await client.patch(f"{B}/tasks/{HUGE}", json={"enabled": False}), 422)
        assert_error(await client.delete(f"{B}/tasks/{HUGE}"), 422)
        # The largest id is valid but names no row.
        assert_error(await client.get(f"{B}/runs/{MAX_ID}"), 404, "not_found")
        assert_error(await client.get(f"{B}/tasks/{MAX_ID}"), 404, "not_found")
        assert_error(await client.post(f"{B}/tasks/{MAX_ID}/toggle"), 404, "not_found")
        # A paging bound past the largest id pages from the newest run.
        for query in ({"cursor": HUGE}, {"before_id": HUGE}):
            page = await client.get(f"{B}/runs", params=query)
            assert page.status_code == 200 and page.json()["next_cursor"] is None
        assert_error(await client.get(f"{B}/runs", params={"since": "0001-01-01T00:00:00+14:00"}), 422)


async def test_service_treats_out_of_range_ids_as_missing(api: ApiEnv) -> None:
    scheduler = api.services.scheduler
    assert await scheduler.get_run(int(HUGE)) is None and await scheduler.get_run(0) is None
    assert await scheduler.list_runs(before_id=int(HUGE)) == await scheduler.list_runs()


async def test_pages_answer_bad_filters_and_ids_without_a_server_error(api: ApiEnv) -> None:
    async with signed_in(api) as client:
        far = await client.get("/app/admin/scheduler/runs", params={"since": "0001-01-01T00:00:00+14:00"})
        assert far.status_code == 422 and "since" in far.text
        late = await client.get("/app/admin/scheduler/runs", params={"until": "9999-12-31T23:59:59-14:00"})
        assert late.status_code == 422 and "until" in late.text
        assert (await client.get("/app/admin/scheduler/runs", params={"cursor": HUGE})).status_code == 200
        assert (await client.get(f"/app/admin/scheduler/runs/{HUGE}")).status_code == 404
        bogus = await client.get("/app/admin/scheduler/runs", params={"status": "bogus"})
        assert bogus.status_code == 422 and "must be one of" in bogus.text and "bogus" in bogus.text
