"""`mediabeat tasks set --alert-…`, `tasks alerts`, `tasks mute` and `tasks unmute`: a task's alert rules."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import typer

from mediabeat.app import Services
from mediabeat.cli.common import print_json, table, when, with_services
from mediabeat.domain.jsonable import jsonable
from mediabeat.domain.task_alerts import AlertRuleChanges, AlertRules, describe_rules, parse_mute_until

AfterFailures = Annotated[
    int | None,
    typer.Option(
        "--alert-after-failures",
        help="Alert when this many runs in a row failed, retries used up (default 1: the first failure)",
    ),
]
AlertLate = Annotated[
    int | None,
    typer.Option("--alert-late", help="Alert when a run has not started this many seconds after its due time; 0 off"),
]
AlertMissing = Annotated[
    bool | None,
    typer.Option("--alert-missing/--no-alert-missing", help="Alert about occurrences that never ran (node down, skip)"),
]
SlowerThan = Annotated[
    int | None, typer.Option("--alert-slower-than", help="Alert when a run takes longer than this many seconds; 0 off")
]
SlowerThanP95 = Annotated[
    float | None,
    typer.Option(
        "--alert-slower-than-p95", help="Alert when a run takes longer than K x the p95 of recent runs; 0 off"
    ),
]
MuteUntil = Annotated[
    str | None,
    typer.Option("--mute-until", help="Send no alert until then: 2h, 1d, 2026-12-24T08:00 (UTC), or off"),
]
AlertWebhook = Annotated[
    str | None,
    typer.Option("--alert-webhook", help="Send this task's alerts to this webhook instead of the global ones; '' off"),
]
AlertEmail = Annotated[
    str | None,
    typer.Option("--alert-email", help="Mail this task's alerts to this address instead (needs MEDIABEAT_SMTP_URL)"),
]


@dataclass(frozen=True, slots=True)
class AlertOptions:
    """The --alert-* options of `tasks set`, as given."""

    after_failures: int | None = None
    late_s: int | None = None
    missing: bool | None = None
    slower_than_s: int | None = None
    slower_than_p95: float | None = None
    mute_until: str | None = None
    webhook: str | None = None
    email: str | None = None

    def changes(self, now: datetime) -> AlertRuleChanges:
        until, unmute = parse_mute_until(self.mute_until, now) if self.mute_until is not None else (None, False)
        return AlertRuleChanges(
            after_failures=self.after_failures,
            late_after_s=self.late_s,
            missing=self.missing,
            slower_than_s=self.slower_than_s,
            slower_than_p95=self.slower_than_p95,
            mute_until=until,
            unmute=unmute,
            webhook_url=self.webhook,
            email=self.email,
        )


async def apply_alert_options(services: Services, task_id: int, options: AlertOptions) -> None:
    """Change the task's alert rules as the options say (TaskValidationError names a bad one)."""
    changes = options.changes(services.clock.now())
    if not changes.empty:
        await services.scheduler.set_alert_rules(task_id, changes)


def rules_lines(rules: AlertRules, now: datetime) -> list[str]:
    """The rules in words, one line each, for `tasks show`."""
    lines = describe_rules(rules)
    if rules.muted(now):
        lines.append(f"muted until {when(rules.mute_until)}")
    return lines


def alerts(
    name: Annotated[str, typer.Argument(help="Task name")],
    limit: Annotated[int, typer.Option(help="How many, newest first")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts")] = False,
) -> None:
    """List a task's recent alerts (failure, recovery, late, missing, slow), muted ones too."""

    async def body(services: Services) -> list[Any]:
        task = await _task_id(services, name)
        return [jsonable(a) for a in await services.scheduler.recent_alerts(task, limit=limit)]

    found = with_services(body)
    if as_json:
        print_json(found)
        return
    table(
        ["when", "kind", "to", "muted", "message"],
        [[a["created_at"], a["kind"], a["destination"], "yes" if a["muted"] else "", a["message"]] for a in found],
    )


def mute(
    name: Annotated[str, typer.Argument(help="Task name")],
    until: Annotated[str, typer.Option("--for", "--until", help="2h, 1d, or a time such as 2026-12-24T08:00 (UTC)")],
) -> None:
    """Mute a task's alerts for a while: they are recorded, not sent."""
    _mute(name, AlertOptions(mute_until=until))


def unmute(name: Annotated[str, typer.Argument(help="Task name")]) -> None:
    """Unmute a task's alerts."""
    _mute(name, AlertOptions(mute_until="off"))


def _mute(name: str, options: AlertOptions) -> None:
    async def body(services: Services) -> AlertRules:
        task_id = await _task_id(services, name)
        await apply_alert_options(services, task_id, options)
        return await services.scheduler.alert_rules(task_id)

    rules = with_services(body)
    typer.echo(f"{name}: alerts muted until {when(rules.mute_until)}" if rules.mute_until else f"{name}: alerts on")


async def _task_id(services: Services, name: str) -> int:
    return (await services.scheduler.get_task_by_name(name)).id
