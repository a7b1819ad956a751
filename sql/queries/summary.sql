-- name: calls_by_queue
-- Calls per queue that entered the queue since $1, or, when $2 is true, whose
-- row was written since $1 (the demo replays old calls as new).
-- avg_hold_s: callers that reached an agent only.
SELECT queue,
       count(*)                                              AS offered,
       count(*) FILTER (WHERE outcome IN ('answered', 'transferred')) AS answered,
       count(*) FILTER (WHERE outcome = 'abandoned')         AS abandoned,
       count(*) FILTER (WHERE outcome = 'timeout')           AS timeout,
       count(*) FILTER (WHERE outcome = 'unknown')           AS unknown,
       count(*) FILTER (WHERE outcome IS NULL)               AS in_progress,
       round(avg(hold_s) FILTER (WHERE outcome IN ('answered', 'transferred')), 1)
                                                             AS avg_hold_s
FROM queue_call
WHERE CASE WHEN $2::boolean THEN updated_at >= $1 ELSE entered_at >= $1 END
GROUP BY queue
ORDER BY queue;

-- name: event_count
SELECT count(*) FROM ami_event WHERE received_at >= $1;

-- name: gaps_since
SELECT node, started_at, ended_at, reason, calls_closed FROM listener_gap
WHERE ended_at >= $1 ORDER BY started_at;
