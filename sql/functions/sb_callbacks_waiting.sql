-- Open callback requests: how many, how many not started within p_minutes,
-- and the oldest one's age.
CREATE OR REPLACE FUNCTION sb_callbacks_waiting(p_minutes integer,
    OUT waiting bigint, OUT stale bigint, OUT oldest_s integer)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT count(*),
           count(*) FILTER (WHERE started_at IS NULL
                              AND requested_at < now() - make_interval(mins => p_minutes)),
           max(extract(epoch FROM now() - requested_at))::integer
      FROM callback_request WHERE status = 'open'
$$;

REVOKE ALL ON FUNCTION sb_callbacks_waiting(p_minutes integer, OUT waiting bigint, OUT stale bigint, OUT oldest_s integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sb_callbacks_waiting(p_minutes integer, OUT waiting bigint, OUT stale bigint, OUT oldest_s integer) TO sb_reports;
