-- The calls this agent may see now: ringing on their phone, connected to them,
-- or ended within the after-call time and not yet given a disposition.  A
-- supervisor also sees every other live call (context only: case details go to
-- the connected agent alone).  Never a case's details: see sb_panel_case.
CREATE OR REPLACE FUNCTION sb_panel_calls(p_agent_id integer)
RETURNS TABLE (uniqueid text, queue text, state text, mine boolean, caller_num text,
               entered_at timestamptz, answered_at timestamptz, ended_at timestamptz,
               member_name text, level text, why text, agency_code text, agency_name text,
               officer_number text, officer_name text, ani text, registered_line boolean,
               case_ref text, case_priority text, disposition text, caller_id text,
               caller_id_failed boolean)
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
    WITH c AS (
        SELECT DISTINCT ON (q.uniqueid) q.*,
               CASE WHEN q.ended_at IS NOT NULL THEN 'ended'
                    WHEN q.answered_at IS NOT NULL THEN 'connected'
                    WHEN me.interface = ANY (q.ringing) THEN 'ringing'
                    ELSE 'waiting' END AS st,
               (q.member_interface = me.interface
                OR (q.answered_at IS NULL AND me.interface = ANY (q.ringing))) AS is_mine
          FROM queue_call q
         WHERE ((q.ended_at IS NULL AND q.entered_at > now() - interval '1 day'
                 AND (me.interface = ANY (q.ringing) OR q.member_interface = me.interface
                      OR me.role = 'supervisor'))
                OR (q.member_interface = me.interface AND q.answered_at IS NOT NULL
                    AND q.ended_at > now() - make_interval(mins => pol.after_call_minutes)
                    AND NOT EXISTS (SELECT 1 FROM call_disposition d
                                     WHERE d.uniqueid = q.uniqueid)))
         ORDER BY q.uniqueid, q.entered_at DESC
    )
    SELECT c.uniqueid, c.queue, c.st, c.is_mine, left(c.caller_num, 40), c.entered_at,
           c.answered_at, c.ended_at, c.member_name, v.level, v.why, v.agency_code,
           v.agency_name, v.officer_number, v.officer_name, v.ani, v.registered_line,
           CASE WHEN v.level IN ('full', 'line-only', 'callback') THEN k.ref END,
           CASE WHEN v.level IN ('full', 'line-only', 'callback') THEN k.priority END,
           d.code, v.caller_id, v.caller_id_failed
      FROM c
      CROSS JOIN LATERAL sb_panel_verification(c.uniqueid) v
      LEFT JOIN LATERAL sb_panel_case_of(c.uniqueid) k ON true
      LEFT JOIN call_disposition d ON d.uniqueid = c.uniqueid
     ORDER BY c.is_mine DESC, c.entered_at DESC
     LIMIT 50;
END $$;

REVOKE ALL ON FUNCTION sb_panel_calls(p_agent_id integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sb_panel_calls(p_agent_id integer) TO sb_panel;
