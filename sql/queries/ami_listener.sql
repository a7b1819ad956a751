-- Queries of the AMI listener (switchboard/ami_listener/writer.py).  Each block starts with
-- "-- name: NAME"; parameters are $n, never string-built.

-- name: ensure_partition
SELECT sb_ensure_event_partition($1::date);

-- name: stage_table
CREATE TEMP TABLE IF NOT EXISTS ami_event_stage
    (LIKE ami_event INCLUDING DEFAULTS) ON COMMIT DELETE ROWS;

-- name: insert_staged
-- Slow path, used only when a batch overlaps rows already written (a replay):
-- returns the keys that were new.
INSERT INTO ami_event SELECT * FROM ami_event_stage
ON CONFLICT DO NOTHING
RETURNING dedupe_key;

-- name: notify_edge
-- A batch with a 911 call or a security event: the wall board refreshes (the
-- sb_live channel its triggers use; delivered at commit).
SELECT pg_notify('sb_live', 'edge');

-- name: load_checkpoint
SELECT spool_id, seq, last_seen_at FROM listener_checkpoint WHERE node = $1;

-- name: save_checkpoint
INSERT INTO listener_checkpoint (node, spool_id, seq, last_seen_at, updated_at)
VALUES ($1, $2, $3, $4, now())
ON CONFLICT (node) DO UPDATE
SET spool_id = EXCLUDED.spool_id, seq = EXCLUDED.seq,
    last_seen_at = COALESCE(EXCLUDED.last_seen_at, listener_checkpoint.last_seen_at),
    updated_at = now();

-- name: load_open_calls
-- Calls the listener still needs: not ended (waiting, or answered and talking),
-- and, for a while, calls a gap closed without knowing how they ended: their
-- late events still correct them.
SELECT call_id, node, uniqueid, linkedid, queue, caller_num, caller_name, entered_at,
       position, outcome, member_interface, member_name, hold_s, ring_s, talk_s,
       rna_count, answered_at, left_at, caller_hangup_at, ended_at, complete_reason, gap_key,
       transfer_target, reconciled_at, ringing
FROM queue_call
WHERE node = $1
  AND (ended_at IS NULL
       OR (gap_key IS NOT NULL AND (outcome = 'unknown' OR complete_reason = 'gap')
           AND ended_at > now() - make_interval(secs => $2)))
ORDER BY entered_at;

-- name: load_open_intervals
SELECT node, queue, interface, member_name, state, reason, started_at, start_key, start_seq
FROM agent_state
WHERE node = $1 AND ended_at IS NULL;

-- name: upsert_gaps
INSERT INTO listener_gap (gap_key, node, started_at, ended_at, reason, calls_closed,
                          backfilled)
SELECT * FROM unnest($1::bytea[], $2::text[], $3::timestamptz[], $4::timestamptz[],
                     $5::text[], $6::int[], $7::int[])
ON CONFLICT (gap_key) DO UPDATE
SET calls_closed = GREATEST(listener_gap.calls_closed, EXCLUDED.calls_closed),
    backfilled = GREATEST(listener_gap.backfilled, EXCLUDED.backfilled);

-- name: upsert_calls
INSERT INTO queue_call (call_id, node, uniqueid, linkedid, queue, caller_num, caller_name,
    entered_at, position, outcome, member_interface, member_name, hold_s, ring_s, talk_s,
    rna_count, answered_at, left_at, caller_hangup_at, ended_at, complete_reason, gap_key,
    transfer_target, reconciled_at, ringing)
SELECT c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14, c15, c16, c17, c18, c19,
       c20, c21, c22, c23, c24, string_to_array(c25, ' ')
FROM unnest($1::bytea[], $2::text[], $3::text[], $4::text[], $5::text[],
    $6::text[], $7::text[], $8::timestamptz[], $9::int[], $10::text[], $11::text[],
    $12::text[], $13::int[], $14::int[], $15::int[], $16::int[], $17::timestamptz[],
    $18::timestamptz[], $19::timestamptz[], $20::timestamptz[], $21::text[], $22::bytea[],
    $23::text[], $24::timestamptz[], $25::text[])
    AS u(c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14, c15, c16, c17, c18, c19,
         c20, c21, c22, c23, c24, c25)
ON CONFLICT (call_id) DO UPDATE SET
    linkedid = EXCLUDED.linkedid, outcome = EXCLUDED.outcome,
    member_interface = EXCLUDED.member_interface, member_name = EXCLUDED.member_name,
    hold_s = EXCLUDED.hold_s, ring_s = EXCLUDED.ring_s, talk_s = EXCLUDED.talk_s,
    rna_count = EXCLUDED.rna_count, answered_at = EXCLUDED.answered_at,
    left_at = EXCLUDED.left_at, caller_hangup_at = EXCLUDED.caller_hangup_at,
    ended_at = EXCLUDED.ended_at, complete_reason = EXCLUDED.complete_reason,
    gap_key = EXCLUDED.gap_key, transfer_target = EXCLUDED.transfer_target,
    reconciled_at = EXCLUDED.reconciled_at, ringing = EXCLUDED.ringing, updated_at = now();

-- name: upsert_intervals
INSERT INTO agent_state (node, queue, interface, member_name, state, reason, started_at,
    ended_at, start_key, start_seq)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
    $7::timestamptz[], $8::timestamptz[], $9::bytea[], $10::bigint[])
ON CONFLICT (node, queue, interface, start_key) DO UPDATE
SET ended_at = EXCLUDED.ended_at, member_name = EXCLUDED.member_name;

-- name: lease_take
-- Take or renew the node's lease: it is ours when free, run out, or ours already.
-- A row back: we hold it until expires_at.
INSERT INTO listener_lease AS l (node, holder, acquired_at, expires_at)
VALUES ($1, $2, now(), now() + make_interval(secs => $3))
ON CONFLICT (node) DO UPDATE
SET holder = EXCLUDED.holder,
    acquired_at = CASE WHEN l.holder = EXCLUDED.holder THEN l.acquired_at ELSE now() END,
    expires_at = EXCLUDED.expires_at
WHERE l.holder = EXCLUDED.holder OR l.expires_at < now()
RETURNING holder, acquired_at;

-- name: lease_held
-- In every batch's transaction: do we still hold the lease?
SELECT EXISTS (SELECT 1 FROM listener_lease
                WHERE node = $1 AND holder = $2 AND expires_at > now());

-- name: lease_release
UPDATE listener_lease SET expires_at = now() WHERE node = $1 AND holder = $2;

-- name: node_state
-- The node's state (up at login, lost after SB_NODE_LOST_S of silence): the
-- wall board's, and callback requests for the callers a lost node had verified
-- in full (sql/migrations/0025_nodes.sql).
SELECT sb_listener_node_state($1, $2, $3, $4);

-- name: presence
-- Agents' own logins, logouts and pauses seen on this node, which every node
-- follows (sql/migrations/0025_nodes.sql, switchboard/ami_listener/presence.py).
SELECT sb_listener_presence($1, $2, $3, $4, $5, $6, $7, $8);

-- name: presence_wanted
-- What every node should have: each agent's membership and pause.
SELECT queue, interface, member_name, logged_in, paused, reason, at, node
  FROM sb_listener_presence_wanted();
