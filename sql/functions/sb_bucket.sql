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
