-- Has this agent used up their calls back for now (panel_policy)?
CREATE OR REPLACE FUNCTION sb_panel_oob_spent(p_agent_id integer) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT (SELECT count(*) FROM oob_call c
             WHERE c.agent_id = p_agent_id
               AND c.started_at > now() - make_interval(mins => p.oob_window_minutes))
           >= p.oob_per_agent
      FROM panel_policy p
$$;

REVOKE ALL ON FUNCTION sb_panel_oob_spent(p_agent_id integer) FROM PUBLIC;
