"""Per-host politeness shared by every crawling process: start times, cool-downs and request slots.

`host_politeness` holds each host's next allowed start, cool-down and robots.txt Crawl-delay;
`host_slots` one expiring lease per request in flight. Both start empty: a host gets its row
on its first request. On PostgreSQL, `mediabeat_take_host_slot` takes a slot and a start in one
round trip (db/stores/politeness.py; it mirrors plan_start there).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mediabeat.db.tables import CleanString

# One round trip for a request's slot and start on PostgreSQL: the same decision as
# db/stores/politeness.py plan_start, under the host row's lock, on the database's clock.
TAKE_HOST_SLOT_SQL = """
CREATE OR REPLACE FUNCTION mediabeat_take_host_slot(
    p_host text, p_holder text, p_limit integer, p_spacing double precision,
    p_crawl_delay double precision, p_lease double precision, p_horizon double precision,
    p_delay_ttl double precision, OUT granted boolean, OUT wait double precision
) LANGUAGE plpgsql AS $$
DECLARE
    h host_politeness%ROWTYPE;
    now_s double precision;
    busy integer;
    shared_delay double precision;
    start_s double precision;
    reach double precision;
BEGIN
    INSERT INTO host_politeness AS hp
        (host, next_start_at, cooldown_until, crawl_delay_s, crawl_delay_until, updated_at)
    VALUES (p_host, 0, 0, 0, 0, extract(epoch FROM clock_timestamp()))
    ON CONFLICT (host) DO UPDATE SET updated_at = extract(epoch FROM clock_timestamp())
    RETURNING * INTO h;
    now_s := h.updated_at;
    SELECT count(*) INTO busy FROM host_slots WHERE host = p_host AND expires_at >= now_s;
    IF p_crawl_delay IS NOT NULL THEN
        h.crawl_delay_s := p_crawl_delay;
        h.crawl_delay_until := now_s + p_delay_ttl;
    END IF;
    IF busy >= p_limit THEN
        granted := false;
        wait := 0;
        RETURN;
    END IF;
    shared_delay := CASE WHEN h.crawl_delay_until > now_s THEN h.crawl_delay_s ELSE 0 END;
    start_s := greatest(now_s, h.next_start_at, h.cooldown_until);
    reach := greatest(p_horizon, p_spacing, shared_delay);
    IF start_s - now_s > reach THEN
        granted := false;
        wait := start_s - now_s - reach;
        RETURN;
    END IF;
    INSERT INTO host_slots (host, holder, expires_at) VALUES (p_host, p_holder, start_s + p_lease);
    UPDATE host_politeness
    SET next_start_at = start_s + greatest(p_spacing, shared_delay),
        crawl_delay_s = h.crawl_delay_s,
        crawl_delay_until = h.crawl_delay_until
    WHERE host = p_host;
    granted := true;
    wait := start_s - now_s;
END $$;
"""

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "host_politeness",
        sa.Column("host", CleanString(300), nullable=False),
        sa.Column("next_start_at", sa.Double(), nullable=False),
        sa.Column("cooldown_until", sa.Double(), nullable=False),
        sa.Column("crawl_delay_s", sa.Double(), nullable=False),
        sa.Column("crawl_delay_until", sa.Double(), nullable=False),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("host", name="pk_host_politeness"),
    )
    op.create_table(
        "host_slots",
        sa.Column("host", CleanString(300), nullable=False),
        sa.Column("holder", CleanString(200), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("host", "holder", name="pk_host_slots"),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(TAKE_HOST_SLOT_SQL)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS mediabeat_take_host_slot")
    op.drop_table("host_slots")
    op.drop_table("host_politeness")
