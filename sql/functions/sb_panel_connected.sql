-- Is this agent the one connected to this call (answered, and not ended longer
-- ago than the after-call time)?
CREATE OR REPLACE FUNCTION sb_panel_connected(p_agent agent, p_uniqueid text, p_during_only boolean)
RETURNS boolean LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT EXISTS (
        SELECT 1 FROM queue_call c
         WHERE c.uniqueid = p_uniqueid AND c.member_interface = p_agent.interface
           AND c.answered_at IS NOT NULL
           AND (c.ended_at IS NULL OR (NOT p_during_only AND c.ended_at > now()
                - make_interval(mins => (SELECT after_call_minutes FROM panel_policy)))))
$$;

REVOKE ALL ON FUNCTION sb_panel_connected(p_agent agent, p_uniqueid text, p_during_only boolean) FROM PUBLIC;
