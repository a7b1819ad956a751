-- A ticket for one playback (refused: not a supervisor, or no such recording).
CREATE OR REPLACE FUNCTION sb_panel_recording_ticket(p_agent_id integer, p_recording_id bigint,
                                          p_token_hash bytea)
RETURNS text LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    me agent := sb_panel_agent_row(p_agent_id);
BEGIN
    IF me.agent_id IS NULL OR me.role <> 'supervisor' THEN
        PERFORM sb_audit_append(sb_panel_actor(me), NULL, NULL, NULL, NULL,
                                'recording-played', 'refused', 'not a supervisor');
        RETURN 'refused';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM recording WHERE recording_id = p_recording_id
                                              AND purged_at IS NULL) THEN
        RETURN 'gone';
    END IF;
    DELETE FROM recording_ticket WHERE expires_at < now() - interval '1 hour';
    INSERT INTO recording_ticket (token_hash, recording_id, agent_id, expires_at)
    VALUES (p_token_hash, p_recording_id, p_agent_id, now() + interval '60 seconds');
    RETURN 'ok';
END $$;

REVOKE ALL ON FUNCTION sb_panel_recording_ticket(p_agent_id integer, p_recording_id bigint, p_token_hash bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sb_panel_recording_ticket(p_agent_id integer, p_recording_id bigint, p_token_hash bytea) TO sb_panel;
