"""Pure scheduling maths: cron fire times and misfire/overlap decisions. No I/O, no clock reads."""

from mediabeat.schedule.cron import CronError, CronSchedule, describe, parse_schedule
from mediabeat.schedule.policy import (
    DuePlan,
    MisfirePolicy,
    OverlapPolicy,
    initial_next_run,
    overlap_allows,
    plan_due,
    plan_given_back,
)

__all__ = [
    "CronError",
    "CronSchedule",
    "DuePlan",
    "MisfirePolicy",
    "OverlapPolicy",
    "describe",
    "initial_next_run",
    "overlap_allows",
    "parse_schedule",
    "plan_due",
    "plan_given_back",
]
