"""`mediabeat feeds websub`: which feeds a WebSub hub pushes, and why push is off when it is."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from mediabeat.app import Services
from mediabeat.cli.common import console, print_json, table, when, with_services
from mediabeat.domain.jsonable import jsonable
from mediabeat.domain.websub import SubscriptionRecord, UnsubscriptionRecord

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts")]


def feeds_websub(
    feed_id: Annotated[int | None, typer.Argument(help="Only this feed")] = None, as_json: JsonFlag = False
) -> None:
    """List WebSub subscriptions: each feed's hub, state, lease and last error; says why push is off."""

    async def body(services: Services) -> tuple[list[SubscriptionRecord], list[UnsubscriptionRecord], str | None]:
        service = services.content.websub
        subs, ending = await service.list(), await service.unsubscriptions()
        mine = [s for s in subs if feed_id is None or s.feed_id == feed_id]
        return mine, [u for u in ending if feed_id is None or u.feed_id == feed_id], service.push_off

    subs, ending, off = with_services(body)
    if as_json:
        print_json(
            {
                "push_off": off,
                "subscriptions": [_json(s) for s in subs],
                "unsubscriptions": [jsonable(u) for u in ending],
            }
        )
        return
    console.print(off or "push is on: hubs reach the callbacks under MEDIABEAT_PUBLIC_URL")
    if ending:
        _print_ending(ending)
    if not subs:
        console.print("no feed advertises a hub yet (hubs are found when hourly-rss-fetch fetches a feed)")
        return
    table(
        ["feed", "hub", "state", "lease ends", "next attempt", "last push", "last error"],
        [
            [
                s.feed_id,
                s.hub,
                s.state.value,
                when(s.lease_expires_at),
                when(s.next_attempt_at),
                when(s.last_push_at),
                s.last_error or "-",
            ]
            for s in subs
        ],
    )


def _json(sub: SubscriptionRecord) -> dict[str, Any]:
    return jsonable(sub)


def _print_ending(ending: list[UnsubscriptionRecord]) -> None:
    """Subscriptions being ended: the hub is asked to stop (hub.mode=unsubscribe) until it confirms."""
    console.print("ended subscriptions (the hub is asked to stop; its pushes get 410):")
    table(
        ["feed", "hub", "why", "state", "requests", "next attempt", "last error"],
        [
            [u.feed_id, u.hub, u.reason, u.state.value, u.attempts, when(u.next_attempt_at), u.last_error or "-"]
            for u in ending
        ],
    )
