-- Spend a ticket (once, by the session that asked for it): the play is audited
-- and the panel learns where the file is and what its digest must be.
CREATE OR REPLACE FUNCTION sb_panel_recording_play(p_agent_id integer, p_token_hash bytea)
RETURNS TABLE (outcome text, uniqueid text, store_key text, sha256 bytea, seconds numeric)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    me agent := sb_panel_agent_row(p_agent_id);
    t  recording_ticket;
    r  recording;
BEGIN
    UPDATE recording_ticket k SET used_at = now()
     WHERE k.token_hash = p_token_hash AND k.agent_id = p_agent_id AND k.used_at IS NULL
       AND k.expires_at > now()
    RETURNING * INTO t;
    IF NOT FOUND OR me.agent_id IS NULL OR me.role <> 'supervisor' THEN
        RETURN QUERY SELECT 'refused'::text, NULL::text, NULL::text, NULL::bytea,
                            NULL::numeric;
        RETURN;
    END IF;
    SELECT * INTO r FROM recording x WHERE x.recording_id = t.recording_id
                                       AND x.purged_at IS NULL;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'gone'::text, NULL::text, NULL::text, NULL::bytea, NULL::numeric;
        RETURN;
    END IF;
    PERFORM sb_audit_append(sb_panel_actor(me), r.uniqueid, NULL, NULL, NULL,
                            'recording-played', 'ok', 'recording ' || r.recording_id);
    RETURN QUERY SELECT 'ok'::text, r.uniqueid, r.store_key, r.sha256, r.seconds;
END $$;

REVOKE ALL ON FUNCTION sb_panel_recording_play(p_agent_id integer, p_token_hash bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sb_panel_recording_play(p_agent_id integer, p_token_hash bytea) TO sb_panel;
