-- The nodes for the wall board: each node's state, and how many distinct
-- agents are logged in on the nodes that are up (an agent is a member on every
-- node, and counts once).
CREATE OR REPLACE FUNCTION sb_node_figures()
RETURNS TABLE (node text, state text, since timestamptz, reason text, agents bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT n.node, n.state, n.since, n.reason,
           (SELECT count(DISTINCT s.interface) FROM agent_state s
             WHERE s.node = n.node AND s.ended_at IS NULL)
      FROM node_status n
     ORDER BY n.node
$$;

REVOKE ALL ON FUNCTION sb_node_figures() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sb_node_figures() TO sb_reports;
