-- Queries of the queue_log reconciler (switchboard/ami_listener/reconcile.py).  Each block
-- starts with "-- name: NAME"; parameters are $n, never string-built.

-- name: calls_by_uniqueid
-- The rows of the calls queue_log speaks of (one caller may be in several queues).
SELECT call_id, node, uniqueid, linkedid, queue, caller_num, caller_name, entered_at,
       position, outcome, member_interface, member_name, hold_s, ring_s, talk_s,
       rna_count, answered_at, left_at, caller_hangup_at, ended_at, complete_reason, gap_key,
       transfer_target, reconciled_at, ringing
FROM queue_call
WHERE node = $1 AND uniqueid = ANY($2::text[])
ORDER BY entered_at;

-- name: calls_in_window
-- Calls of the node that entered a queue in [$2, $3): those queue_log lacks are
-- reported (a call refused at the door, joined-empty, is never in queue_log).
SELECT uniqueid, queue, outcome, entered_at
FROM queue_call
WHERE node = $1 AND entered_at >= $2 AND entered_at < $3
  AND outcome IS DISTINCT FROM 'joined-empty'
ORDER BY entered_at;

-- name: gap_at
-- The listener gap a moment falls in, if any (a call created from queue_log
-- points at the gap that hid it).
SELECT gap_key FROM listener_gap
WHERE node = $1 AND started_at <= $2 AND ended_at >= $2
ORDER BY started_at DESC LIMIT 1;

-- name: last_seen
-- The listener's last committed frame: calls that ended after it may still be
-- in its spool, so they are not reconciled yet.
SELECT last_seen_at FROM listener_checkpoint WHERE node = $1;

-- name: load_position
SELECT path, inode, byte_offset FROM queue_log_position WHERE node = $1;

-- name: save_position
INSERT INTO queue_log_position (node, path, inode, byte_offset, updated_at)
VALUES ($1, $2, $3, $4, now())
ON CONFLICT (node) DO UPDATE
SET path = EXCLUDED.path, inode = EXCLUDED.inode, byte_offset = EXCLUDED.byte_offset,
    updated_at = now();

-- name: oldest_unsettled
-- Where a first scheduled run starts reading queue_log: the oldest call of the
-- node whose end the database does not know (open, or closed by a gap).
SELECT min(entered_at) AS entered_at FROM queue_call
WHERE node = $1 AND (ended_at IS NULL OR outcome = 'unknown' OR complete_reason = 'gap');

-- name: mark_gaps_reconciled
-- Gaps of the node that ended before $2 (queue_log read and settled up to
-- there) and, with $3, started after it: their calls now agree with queue_log.
UPDATE listener_gap g
SET reconciled_at = now(),
    backfilled = (SELECT count(*) FROM queue_call c
                  WHERE c.gap_key = g.gap_key AND c.reconciled_at IS NOT NULL)
WHERE g.node = $1 AND g.reconciled_at IS NULL AND g.ended_at <= $2
  AND ($3::timestamptz IS NULL OR g.started_at >= $3)
RETURNING started_at, ended_at, backfilled;
