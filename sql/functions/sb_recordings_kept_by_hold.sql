-- Recordings older than the retention that a legal hold keeps (the purge's
-- report line).
CREATE OR REPLACE FUNCTION sb_recordings_kept_by_hold(p_days integer)
RETURNS bigint LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT count(*) FROM recording r JOIN legal_hold h USING (uniqueid)
     WHERE r.purged_at IS NULL AND r.started_at < now() - make_interval(days => p_days)
$$;

REVOKE ALL ON FUNCTION sb_recordings_kept_by_hold(p_days integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sb_recordings_kept_by_hold(p_days integer) TO sb_panel;
