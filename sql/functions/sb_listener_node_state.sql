-- The listener's report of a node's state (in the batch that cut its calls).
-- When the node is lost: every caller it had verified in full and lost (a
-- queued call it cut, or a call still in the IVR) gets a callback request to
-- the agency's registered number (the number the verification was made from),
-- unless the call already has one.  Returns
-- the number of requests made.
CREATE OR REPLACE FUNCTION sb_listener_node_state(p_node text, p_state text, p_since timestamptz,
                                       p_reason text)
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_made integer := 0;
    n integer;
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
        -- and those still in the IVR, verified but not yet queued: a call of this
        -- node (its uniqueid starts with the node's systemname) verified in full
        -- in the last two hours, with no Hangup stored and no queue row that
        -- ended otherwise
        INSERT INTO callback_request (uniqueid, ani, origin)
        SELECT DISTINCT ON (v.uniqueid) v.uniqueid, v.ani, 'node-lost'
          FROM verify_attempt v
         WHERE v.outcome = 'full'
           AND v.finished_at > p_since - interval '2 hours'
           AND v.finished_at <= p_since + interval '1 second'
           AND left(v.uniqueid, length(p_node) + 1) = p_node || '-'
           AND v.ani ~ '^\+[1-9][0-9]{6,14}$'
           AND NOT EXISTS (SELECT 1 FROM ami_event e WHERE e.node = p_node
                              AND e.uniqueid = v.uniqueid AND e.event = 'Hangup')
           AND NOT EXISTS (SELECT 1 FROM queue_call c WHERE c.uniqueid = v.uniqueid
                              AND c.outcome IS DISTINCT FROM 'cut')
         ORDER BY v.uniqueid, v.finished_at DESC
        ON CONFLICT (uniqueid) DO NOTHING;
        GET DIAGNOSTICS n = ROW_COUNT;
        v_made := v_made + n;
    END IF;
    PERFORM pg_notify('sb_live', 'nodes');
    RETURN v_made;
END $$;

REVOKE ALL ON FUNCTION sb_listener_node_state(p_node text, p_state text, p_since timestamp with time zone, p_reason text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sb_listener_node_state(p_node text, p_state text, p_since timestamp with time zone, p_reason text) TO sb_listener;
