-- Open callback requests, oldest first, a page at a time (p_limit from
-- p_offset, at most 100), each with who has claimed it and how many are open in
-- all (total).  The number shown is the registered number a call would go to
-- (none: it cannot be dialled).
CREATE OR REPLACE FUNCTION sb_panel_callbacks(p_agent_id integer, p_offset integer,
                                              p_limit integer)
RETURNS TABLE (request_id bigint, requested_at timestamptz, age_s integer, case_ref text,
               agency_name text, dial_e164 text, claimed_by text, claimed_by_me boolean,
               started_at timestamptz, total bigint)
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
    WITH page AS (  -- the page first, so only its rows look their number up
        SELECT r.*, count(*) OVER () AS n
          FROM callback_request r
         WHERE r.status = 'open'
         ORDER BY r.requested_at, r.request_id
        OFFSET greatest(p_offset, 0) LIMIT least(greatest(p_limit, 1), 100)
    )
    SELECT r.request_id, r.requested_at, extract(epoch FROM now() - r.requested_at)::integer,
           r.case_ref, d.name, d.e164,
           CASE WHEN r.claimed_at > now() - make_interval(mins => pol.claim_minutes)
                THEN a.name END,
           r.claimed_by = me.agent_id AND r.claimed_at > now()
               - make_interval(mins => pol.claim_minutes),
           r.started_at, r.n
      FROM page r
      LEFT JOIN agent a ON a.agent_id = r.claimed_by
      CROSS JOIN LATERAL sb_panel_callback_number(r.request_id) d
     ORDER BY r.requested_at, r.request_id;
END $$;

REVOKE ALL ON FUNCTION sb_panel_callbacks(integer, integer, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sb_panel_callbacks(integer, integer, integer) TO sb_panel;
