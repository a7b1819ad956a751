-- Raw AMI events, one row per accepted event frame, partitioned by day (UTC).
--
-- event_time  Asterisk's own time (Timestamp header, timestampevents=yes) when
--             present and sane, else the listener's receive time.
-- dedupe_key  sha256(node, frame bytes) when the frame carries a Timestamp (the
--             same event seen by two sessions or replayed has the same key), else
--             sha256(node, spool id, spool sequence) (a replay from the spool has
--             the same key).  The primary key makes a replay a no-op.
CREATE TABLE ami_event (
    event_time   timestamptz NOT NULL,
    dedupe_key   bytea       NOT NULL,
    node         text        NOT NULL,
    received_at  timestamptz NOT NULL,
    event        text        NOT NULL,
    uniqueid     text,
    linkedid     text,
    queue        text,
    interface    text,
    spool_seq    bigint      NOT NULL,
    fields       jsonb       NOT NULL,
    PRIMARY KEY (event_time, dedupe_key)
) PARTITION BY RANGE (event_time);

-- Catches rows for days that have no partition yet; nothing is ever refused.
CREATE TABLE ami_event_default PARTITION OF ami_event DEFAULT;

CREATE INDEX ami_event_call_idx ON ami_event (node, uniqueid);
CREATE INDEX ami_event_name_idx ON ami_event (event, event_time);

-- Where each node's listener has got to in its spool; written in the same
-- transaction as the rows, so a restart resumes exactly after the last commit.
CREATE TABLE listener_checkpoint (
    node        text PRIMARY KEY,
    spool_id    text        NOT NULL,
    seq         bigint      NOT NULL,
    last_seen_at timestamptz,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Periods in which a listener was not connected to its node: events may be
-- missing there, and reports must say so.
CREATE TABLE listener_gap (
    id            bigserial PRIMARY KEY,
    gap_key       bytea       NOT NULL UNIQUE,
    node          text        NOT NULL,
    started_at    timestamptz NOT NULL,
    ended_at      timestamptz NOT NULL,
    reason        text        NOT NULL,
    calls_closed  integer     NOT NULL DEFAULT 0,
    backfilled    integer     NOT NULL DEFAULT 0,
    CHECK (ended_at >= started_at)
);
CREATE INDEX listener_gap_time_idx ON listener_gap (node, started_at);
