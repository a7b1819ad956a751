-- name: queue_figures
-- $1 from, $2 to, $3 bucket, $4 time zone, $5 short s, $6 SL s, $7 variant, $8 wrap-up s
-- From the per-interval bins when it can (sql/migrations/0020), else the rows.
SELECT * FROM sb_kpi_figures($1, $2, $3, $4, $5, $6, $7, $8);

-- name: agent_figures
SELECT * FROM sb_kpi_agent($1, $2, $3, $4, $5);

-- name: gaps
-- Listener gaps overlapping [$1, $2): figures there may miss events, unless the
-- reconciler has made the calls agree with queue_log since (reconciled_at).
SELECT node, started_at, ended_at, reason, calls_closed, backfilled, reconciled_at
FROM listener_gap
WHERE started_at < $2 AND coalesce(ended_at, now()) > $1 ORDER BY started_at;

-- name: cut_calls
-- Calls an Asterisk shutdown or restart ended, entered in [$1, $2), per queue:
-- the answered ones count as answered; the waiting ones are in no figure.
SELECT queue, count(*) FILTER (WHERE answered_at IS NOT NULL) AS talking,
       count(*) FILTER (WHERE answered_at IS NULL) AS waiting
FROM queue_call
WHERE outcome = 'cut' AND entered_at >= $1 AND entered_at < $2
GROUP BY queue ORDER BY queue;

-- name: agents_logged_in
-- Mean number of agents logged in per interval.
SELECT bucket, sum(logged_in_s) AS logged_in_s FROM sb_kpi_agent($1, $2, $3, $4, 0)
GROUP BY bucket ORDER BY bucket;

-- name: live
SELECT * FROM sb_live_queues();

-- name: abandoned_today
-- Today's abandoned calls (not short ones), newest first: when, queue, wait.
SELECT entered_at, queue, wait_s FROM sb_call_fact
WHERE outcome = 'abandoned' AND entered_at >= $1 AND wait_s >= $2
ORDER BY entered_at DESC LIMIT 50;

-- name: security_counts
-- Locks, blocks, shed attempts and refusals since $1 (sql/migrations/0008).
SELECT kind, n FROM sb_security_counts($1);

-- name: callbacks_waiting
-- Open callback requests, those not started within $1 minutes, the oldest's age.
SELECT waiting, stale, oldest_s FROM sb_callbacks_waiting($1);

-- name: live_heard
-- sb_live_queues, agents counted only for nodes heard from in the last $1 s.
SELECT * FROM sb_live_queues_heard($1);

-- name: silent_nodes
SELECT node, last_seen_at FROM sb_silent_nodes($1);

-- name: caller_id_split
-- Today's callers by their caller ID's STIR/SHAKEN check (attested-a,
-- attested-bc, not-attested, failed).
SELECT kind, calls FROM sb_caller_id_split($1);

-- name: verify_split
-- Today's callers by their best verification (full, callback, line-only, unverified).
SELECT level, calls FROM sb_verify_split($1);

-- name: edge_figures
-- The SIP edge since $1 (sql/migrations/0024): failed authentications and from
-- how many addresses, bans in force and placed, outbound calls granted and
-- refused, this hour's outbound minutes against the budget, 911 calls.
SELECT * FROM sb_edge_figures($1);

-- name: edge_bans
SELECT address, jail, failures, banned_at, until FROM sb_edge_bans();

-- name: edge_emergencies
-- 911 calls since $1, newest first (at most 20), each with its end when known.
SELECT node, phone, place, elin, started_at, ended_at, status FROM sb_edge_emergencies($1);

-- name: edge_failing
-- Addresses failing to authenticate since $1, most failures first (at most 10).
SELECT address, failures, last_at FROM sb_edge_failing($1);

-- name: node_figures
-- Every node the listeners read: up or lost since when, and its agents
-- (sql/migrations/0025_nodes.sql).
SELECT node, state, since, reason, agents FROM sb_node_figures();

-- name: mix
-- The verification mix, caller-ID checks, callbacks, dispositions and transfers
-- of the range (counts only; sql/migrations/0026_supervisor.sql)
SELECT part, kind, n FROM sb_report_mix($1, $2);
