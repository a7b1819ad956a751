-- Live, per queue: callers waiting now and the longest current wait; agents
-- available / on a call / paused now (busiest state per agent, per queue).
CREATE OR REPLACE FUNCTION sb_live_queues()
RETURNS TABLE (queue text, waiting bigint, longest_wait_s numeric, oldest_entered_at timestamptz,
               agents_available bigint, agents_on_call bigint, agents_paused bigint,
               paused_reasons jsonb)
LANGUAGE sql STABLE AS $$
WITH w AS (
    SELECT queue, count(*) AS n, min(entered_at) AS oldest FROM queue_call
     WHERE outcome IS NULL AND answered_at IS NULL AND ended_at IS NULL
       AND entered_at > now() - interval '1 day'
     GROUP BY queue
), a AS (
    SELECT DISTINCT ON (queue, interface) queue, interface, state, reason FROM agent_state
     WHERE ended_at IS NULL
     ORDER BY queue, interface,
              CASE state WHEN 'on_call' THEN 1 WHEN 'ringing' THEN 2 WHEN 'paused' THEN 3
                         WHEN 'available' THEN 4 ELSE 5 END
), ag AS (
    SELECT queue,
           count(*) FILTER (WHERE state = 'available') AS avail,
           count(*) FILTER (WHERE state IN ('on_call', 'ringing')) AS busy,
           count(*) FILTER (WHERE state = 'paused') AS paused,
           coalesce(jsonb_object_agg(coalesce(reason, '(none)'), 1)
                    FILTER (WHERE state = 'paused'), '{}'::jsonb) AS reasons_seen
      FROM a GROUP BY queue
), reasons AS (
    SELECT queue, jsonb_object_agg(r, n) AS by_reason FROM (
        SELECT queue, coalesce(reason, '(none)') AS r, count(*) AS n FROM a
         WHERE state = 'paused' GROUP BY 1, 2) x GROUP BY queue
), qs AS (
    SELECT queue FROM w UNION SELECT queue FROM ag
)
SELECT qs.queue, coalesce(w.n, 0),
       round(extract(epoch FROM now() - w.oldest)::numeric, 1), w.oldest,
       coalesce(ag.avail, 0), coalesce(ag.busy, 0), coalesce(ag.paused, 0),
       coalesce(reasons.by_reason, '{}'::jsonb)
  FROM qs LEFT JOIN w USING (queue) LEFT JOIN ag USING (queue)
  LEFT JOIN reasons USING (queue)
 ORDER BY qs.queue
$$;
