-- A recording's file deleted from the store by the purge: its row marked and
-- the deletion audited; refused (false) under a legal hold.  Run by
-- `switchboard recordings purge` (the owner) and by the panel's daily
-- housekeeping (sb_panel, switchboard/web/supervise.py).
CREATE OR REPLACE FUNCTION sb_recording_purged(p_recording_id bigint, p_actor text, p_days integer)
RETURNS boolean LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    r recording;
BEGIN
    UPDATE recording SET purged_at = now()
     WHERE recording_id = p_recording_id AND purged_at IS NULL
       AND NOT EXISTS (SELECT 1 FROM legal_hold h WHERE h.uniqueid = recording.uniqueid)
    RETURNING * INTO r;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    -- the panel's login names itself, whatever actor it passes
    PERFORM sb_audit_append(CASE WHEN session_user = 'sb_panel' THEN 'housekeeping:panel'
                                 ELSE p_actor END, r.uniqueid, NULL, NULL, NULL, 'recording-purged', 'ok',
                            encode(r.sha256, 'hex') || ' older than ' || p_days || ' days');
    RETURN true;
END $$;

REVOKE ALL ON FUNCTION sb_recording_purged(p_recording_id bigint, p_actor text, p_days integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sb_recording_purged(p_recording_id bigint, p_actor text, p_days integer) TO sb_panel;
