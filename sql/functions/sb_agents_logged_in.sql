CREATE OR REPLACE FUNCTION sb_agents_logged_in()
RETURNS bigint LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT count(DISTINCT s.interface) FROM agent_state s
     WHERE s.ended_at IS NULL
       AND NOT EXISTS (SELECT 1 FROM node_status n WHERE n.node = s.node AND n.state = 'lost')
$$;

REVOKE ALL ON FUNCTION sb_agents_logged_in() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sb_agents_logged_in() TO sb_reports;
