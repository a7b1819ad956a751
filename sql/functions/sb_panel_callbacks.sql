-- Open callback requests, oldest first, with who has claimed each.  The number
-- shown is the registered number a call would go to (none: it cannot be dialled).
CREATE OR REPLACE FUNCTION sb_panel_callbacks(p_agent_id integer)
RETURNS TABLE (request_id bigint, requested_at timestamptz, age_s integer, case_ref text,
               agency_name text, dial_e164 text, claimed_by text, claimed_by_me boolean,
               started_at timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    me  agent := sb_panel_agent_row(p_agent_id);
    pol panel_policy;
BEGIN
    IF me.agent_id IS NULL THEN
        RETURN;
    END IF;
    SELECT * INTO pol FROM panel_policy;
    RETURN QUERY
    SELECT r.request_id, r.requested_at, extract(epoch FROM now() - r.requested_at)::integer,
           r.case_ref, d.name, d.e164,
           CASE WHEN r.claimed_at > now() - make_interval(mins => pol.claim_minutes)
                THEN a.name END,
           r.claimed_by = me.agent_id AND r.claimed_at > now()
               - make_interval(mins => pol.claim_minutes),
           r.started_at
      FROM callback_request r
      LEFT JOIN agent a ON a.agent_id = r.claimed_by
      CROSS JOIN LATERAL sb_panel_callback_number(r.request_id) d
     WHERE r.status = 'open'
     ORDER BY r.requested_at
     LIMIT 200;
END $$;

REVOKE ALL ON FUNCTION sb_panel_callbacks(p_agent_id integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sb_panel_callbacks(p_agent_id integer) TO sb_panel;
