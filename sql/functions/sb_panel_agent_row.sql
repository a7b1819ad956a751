-- The agent behind a session, or nothing.
CREATE OR REPLACE FUNCTION sb_panel_agent_row(p_agent_id integer) RETURNS agent
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT * FROM agent WHERE agent_id = p_agent_id AND disabled_at IS NULL
$$;

REVOKE ALL ON FUNCTION sb_panel_agent_row(p_agent_id integer) FROM PUBLIC;
