-- Several Asterisk nodes behind the SIP front (issue 23).
--
-- node_status: what the listener knows of each node it reads: 'up' since its
-- last login, or 'lost' since its last bytes, when it stayed silent for
-- SB_NODE_LOST_S (a dead Asterisk, or a host gone).  The wall board says so
-- plainly and stops counting the node's agents; the front already sends new
-- calls elsewhere.
CREATE TABLE node_status (
    node       text PRIMARY KEY CHECK (length(node) BETWEEN 1 AND 80),
    state      text NOT NULL CHECK (state IN ('up', 'lost')),
    since      timestamptz NOT NULL,
    reason     text CHECK (length(reason) <= 200),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- who asked for a callback: the caller (the IVR's offer), or nobody: the node
-- the caller was on died after verifying them in full (sb_listener_node_state)
ALTER TABLE callback_request
    ADD COLUMN origin text NOT NULL DEFAULT 'caller' CHECK (origin IN ('caller', 'node-lost'));

-- The listener's report of a node's state (in the batch that cut its calls).
-- When the node is lost: every caller of a call it cut that was verified in
-- full gets a callback request to the agency's registered number (the number
-- the verification was made from), unless the call already has one.  Returns
-- the number of requests made.
CREATE FUNCTION sb_listener_node_state(p_node text, p_state text, p_since timestamptz,
                                       p_reason text)
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_made integer := 0;
BEGIN
    INSERT INTO node_status (node, state, since, reason)
    VALUES (left(p_node, 80), p_state, p_since, left(p_reason, 200))
    ON CONFLICT (node) DO UPDATE
        SET state = EXCLUDED.state, since = EXCLUDED.since, reason = EXCLUDED.reason,
            updated_at = now()
        WHERE node_status.state IS DISTINCT FROM EXCLUDED.state;
    IF p_state = 'lost' THEN
        INSERT INTO callback_request (uniqueid, ani, origin)
        SELECT DISTINCT ON (c.uniqueid) c.uniqueid, v.ani, 'node-lost'
          FROM queue_call c
          JOIN verify_attempt v ON v.uniqueid = c.uniqueid AND v.outcome = 'full'
         WHERE c.node = p_node AND c.outcome = 'cut'
           AND c.complete_reason = format('node %s lost', p_node)
           AND c.ended_at >= p_since - interval '1 second'
           AND v.ani ~ '^\+[1-9][0-9]{6,14}$'
         ORDER BY c.uniqueid, v.finished_at DESC
        ON CONFLICT (uniqueid) DO NOTHING;
        GET DIAGNOSTICS v_made = ROW_COUNT;
    END IF;
    PERFORM pg_notify('sb_live', 'nodes');
    RETURN v_made;
END $$;

-- The nodes for the wall board: each node's state, and how many distinct
-- agents are logged in on the nodes that are up (an agent is a member on every
-- node, and counts once).
CREATE FUNCTION sb_node_figures()
RETURNS TABLE (node text, state text, since timestamptz, reason text, agents bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT n.node, n.state, n.since, n.reason,
           (SELECT count(DISTINCT s.interface) FROM agent_state s
             WHERE s.node = n.node AND s.ended_at IS NULL)
      FROM node_status n
     ORDER BY n.node
$$;

CREATE FUNCTION sb_agents_logged_in()
RETURNS bigint LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT count(DISTINCT s.interface) FROM agent_state s
     WHERE s.ended_at IS NULL
       AND NOT EXISTS (SELECT 1 FROM node_status n WHERE n.node = s.node AND n.state = 'lost')
$$;

REVOKE ALL ON node_status FROM PUBLIC;
REVOKE ALL ON FUNCTION sb_listener_node_state(text, text, timestamptz, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION sb_node_figures() FROM PUBLIC;
REVOKE ALL ON FUNCTION sb_agents_logged_in() FROM PUBLIC;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sb_listener') THEN
        EXECUTE 'GRANT EXECUTE ON FUNCTION sb_listener_node_state(text, text, timestamptz, '
                'text) TO sb_listener';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sb_reports') THEN
        EXECUTE 'GRANT EXECUTE ON FUNCTION sb_node_figures() TO sb_reports';
        EXECUTE 'GRANT EXECUTE ON FUNCTION sb_agents_logged_in() TO sb_reports';
    END IF;
END $$;
