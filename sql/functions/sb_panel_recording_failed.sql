-- The panel could not play what the database handed out (a missing or altered
-- file): audited, so the supervisor's complaint has a row.
CREATE OR REPLACE FUNCTION sb_panel_recording_failed(p_agent_id integer, p_uniqueid text,
                                          p_why text)
RETURNS void LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT sb_audit_append(sb_panel_actor(sb_panel_agent_row(p_agent_id)), p_uniqueid, NULL,
                           NULL, NULL, 'recording-played', 'failed', left(p_why, 200))
$$;

REVOKE ALL ON FUNCTION sb_panel_recording_failed(p_agent_id integer, p_uniqueid text, p_why text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sb_panel_recording_failed(p_agent_id integer, p_uniqueid text, p_why text) TO sb_panel;
