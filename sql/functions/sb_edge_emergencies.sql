-- The 911 calls since p_since, newest first, each with its end when known.
CREATE OR REPLACE FUNCTION sb_edge_emergencies(p_since timestamptz)
RETURNS TABLE (node text, uniqueid text, phone text, place text, elin text,
               started_at timestamptz, ended_at timestamptz, status text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT d.node, d.uniqueid, left(d.fields->>'Phone', 40), left(d.fields->>'Place', 200),
           left(d.fields->>'Elin', 20), d.event_time, e.event_time,
           left(e.fields->>'Status', 20)
      FROM ami_event d
      LEFT JOIN LATERAL (
          SELECT x.event_time, x.fields FROM ami_event x
           WHERE x.event_time >= d.event_time AND x.node = d.node
             AND x.uniqueid = d.uniqueid AND x.event = 'UserEvent'
             AND x.fields->>'UserEvent' = 'SBEmergency' AND x.fields->>'Step' = 'end'
           LIMIT 1) e ON true
     WHERE d.event_time >= p_since AND d.event = 'UserEvent'
       AND d.fields->>'UserEvent' = 'SBEmergency' AND d.fields->>'Step' = 'dial'
     ORDER BY d.event_time DESC LIMIT 20
$$;

REVOKE ALL ON FUNCTION sb_edge_emergencies(p_since timestamp with time zone) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sb_edge_emergencies(p_since timestamp with time zone) TO sb_reports;
