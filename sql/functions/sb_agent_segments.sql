-- Agent figures per interval.  An agent (interface) is in several queues at
-- once; at each moment its state is the busiest of its queue memberships:
-- on_call > ringing > paused > available > unavailable/unknown.
CREATE OR REPLACE FUNCTION sb_agent_segments(p_from timestamptz, p_to timestamptz,
                                             p_bucket text, p_tz text)
RETURNS TABLE (interface text, member_name text, state text, reason text,
               seg_start timestamptz, seg_end timestamptz)
LANGUAGE sql STABLE AS $$
WITH iv AS (
    SELECT a.interface, a.member_name, a.state, a.reason,
           greatest(a.started_at, p_from) AS s,
           least(coalesce(a.ended_at, now()), p_to) AS e,
           CASE a.state WHEN 'on_call' THEN 1 WHEN 'ringing' THEN 2 WHEN 'paused' THEN 3
                        WHEN 'available' THEN 4 ELSE 5 END AS rank
      FROM agent_state a
     WHERE a.started_at < p_to AND coalesce(a.ended_at, now()) > p_from
), pts AS (
    SELECT interface, s AS t FROM iv UNION SELECT interface, e FROM iv
    UNION
    SELECT DISTINCT iv.interface, g
      FROM iv, sb_bucket_starts(p_from, p_to, p_bucket, p_tz) g
     WHERE g > p_from AND g < p_to
), seg AS (
    SELECT interface, t AS s, lead(t) OVER (PARTITION BY interface ORDER BY t) AS e FROM pts
)
SELECT seg.interface, best.member_name, best.state, best.reason, seg.s, seg.e
  FROM seg
  JOIN LATERAL (SELECT iv.member_name, iv.state, iv.reason FROM iv
                 WHERE iv.interface = seg.interface AND iv.s <= seg.s AND iv.e >= seg.e
                 ORDER BY iv.rank LIMIT 1) best ON true
 WHERE seg.e IS NOT NULL AND seg.e > seg.s
$$;
