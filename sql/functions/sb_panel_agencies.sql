-- The agencies an agent may call back when the caller claimed none.
CREATE OR REPLACE FUNCTION sb_panel_agencies()
RETURNS TABLE (code text, name text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT g.code, g.name FROM agency g
     WHERE g.suspended_at IS NULL AND EXISTS (SELECT 1 FROM agency_line l
                                               WHERE l.agency_id = g.agency_id)
     ORDER BY g.name
$$;

REVOKE ALL ON FUNCTION sb_panel_agencies() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sb_panel_agencies() TO sb_panel;
