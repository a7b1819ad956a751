-- What became of it: the supervisor's phone answered (started), and later
-- hung up (ended); or it never answered, or the call could not be placed.
CREATE OR REPLACE FUNCTION sb_panel_spy_state(p_spy_id bigint, p_state text)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    s  spy_session;
    me agent;
BEGIN
    IF p_state NOT IN ('started', 'ended', 'not-answered', 'failed', 'unknown') THEN
        RAISE EXCEPTION 'sb_panel_spy_state: state %', p_state;
    END IF;
    SELECT * INTO s FROM spy_session WHERE spy_id = p_spy_id AND ended_at IS NULL
       FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    SELECT * INTO me FROM agent WHERE agent_id = s.agent_id;
    IF p_state = 'started' THEN
        UPDATE spy_session SET started_at = now() WHERE spy_id = p_spy_id;
        PERFORM sb_audit_append(sb_panel_actor(me), s.uniqueid, NULL, NULL, NULL,
                                'spy-start', 'ok', s.mode || ' session ' || s.spy_id);
    ELSE
        UPDATE spy_session SET ended_at = now(), result = p_state WHERE spy_id = p_spy_id;
        PERFORM sb_audit_append(sb_panel_actor(me), s.uniqueid, NULL, NULL, NULL,
                                'spy-end', p_state, s.mode || ' session ' || s.spy_id);
    END IF;
END $$;

REVOKE ALL ON FUNCTION sb_panel_spy_state(p_spy_id bigint, p_state text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sb_panel_spy_state(p_spy_id bigint, p_state text) TO sb_panel;
