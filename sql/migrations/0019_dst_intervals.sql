-- Intervals in a zone with daylight saving time (issue 14: Nashville runs on
-- America/Chicago).  sb_bucket (0005) truncated the *local* time and read it
-- back in the zone, so on the autumn day (25 hours) both 01:00 hours fell into
-- one bucket, and 15-minute buckets likewise; day steps in sb_agent_segments
-- were 24 hours of the session's zone, not local days.
--
-- Now: an hour is truncated keeping its own UTC offset (date_trunc with a zone
-- does not re-resolve the offset below a day), a quarter hour is binned from
-- the start of its local hour (right for zones offset by :30 or :45 too), a
-- day runs local midnight to local midnight (23 or 25 hours on the change
-- days).  The 25-hour day has 25 hourly intervals, the 23-hour day 23.
CREATE OR REPLACE FUNCTION sb_bucket(t timestamptz, p_bucket text, p_tz text)
RETURNS timestamptz LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE p_bucket
        WHEN '15min' THEN date_bin('15 minutes', t, date_trunc('hour', t, p_tz))
        WHEN 'hour' THEN date_trunc('hour', t, p_tz)
        WHEN 'day' THEN date_trunc('day', t, p_tz)
    END
$$;

-- The interval starts from p_from's bucket to p_to: quarter hours and hours are
-- fixed lengths; days are local calendar days.
CREATE FUNCTION sb_bucket_starts(p_from timestamptz, p_to timestamptz, p_bucket text,
                                 p_tz text)
RETURNS SETOF timestamptz LANGUAGE sql STABLE AS $$
    SELECT g FROM generate_series(sb_bucket(p_from, p_bucket, p_tz), p_to,
                                  CASE p_bucket WHEN '15min' THEN interval '15 minutes'
                                                ELSE interval '1 hour' END) g
     WHERE p_bucket <> 'day'
    UNION ALL
    SELECT (d AT TIME ZONE p_tz)
      FROM generate_series(sb_bucket(p_from, 'day', p_tz) AT TIME ZONE p_tz,
                           p_to AT TIME ZONE p_tz, interval '1 day') d
     WHERE p_bucket = 'day'
$$;

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
