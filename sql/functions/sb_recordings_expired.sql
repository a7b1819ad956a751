-- Recordings older than the retention, not under a legal hold, oldest first.
CREATE OR REPLACE FUNCTION sb_recordings_expired(p_days integer, p_limit integer)
RETURNS TABLE (recording_id bigint, uniqueid text, store_key text, started_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT r.recording_id, r.uniqueid, r.store_key, r.started_at
      FROM recording r
     WHERE r.purged_at IS NULL AND r.started_at < now() - make_interval(days => p_days)
       AND NOT EXISTS (SELECT 1 FROM legal_hold h WHERE h.uniqueid = r.uniqueid)
     ORDER BY r.started_at
     LIMIT p_limit
$$;

REVOKE ALL ON FUNCTION sb_recordings_expired(p_days integer, p_limit integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sb_recordings_expired(p_days integer, p_limit integer) TO sb_panel;
