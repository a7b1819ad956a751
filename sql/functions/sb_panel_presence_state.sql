-- What the panel shows of the agent's own membership: per queue, logged in,
-- paused and why, and when and where it last changed.
CREATE OR REPLACE FUNCTION sb_panel_presence_state(p_agent_id integer)
RETURNS TABLE (queue text, logged_in boolean, paused boolean, reason text, at timestamptz,
               node text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT a.queue, a.logged_in, a.paused, a.reason, a.at, a.node
      FROM agent_presence a JOIN agent g ON g.interface = a.interface
     WHERE g.agent_id = p_agent_id
     ORDER BY a.queue
$$;

REVOKE ALL ON FUNCTION sb_panel_presence_state(p_agent_id integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sb_panel_presence_state(p_agent_id integer) TO sb_panel;
