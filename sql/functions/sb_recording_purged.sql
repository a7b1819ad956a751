CREATE OR REPLACE FUNCTION sb_recording_purged(p_recording_id bigint, p_actor text, p_days integer)
RETURNS boolean LANGUAGE plpgsql AS $$
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
    PERFORM sb_audit_append(p_actor, r.uniqueid, NULL, NULL, NULL, 'recording-purged', 'ok',
                            encode(r.sha256, 'hex') || ' older than ' || p_days || ' days');
    RETURN true;
END $$;

REVOKE ALL ON FUNCTION sb_recording_purged(p_recording_id bigint, p_actor text, p_days integer) FROM PUBLIC;
