-- The interval starts from p_from's bucket to p_to: quarter hours and hours are
-- fixed lengths; days are local calendar days.
CREATE OR REPLACE FUNCTION sb_bucket_starts(p_from timestamptz, p_to timestamptz, p_bucket text,
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
