-- The case the call's lookup found (its audit row), or nothing.
CREATE OR REPLACE FUNCTION sb_panel_case_of(p_uniqueid text) RETURNS case_record
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT c.* FROM audit_log l JOIN case_record c ON c.ref = l.detail
     WHERE l.uniqueid = p_uniqueid AND l.action = 'lookup' AND l.result = 'found'
     ORDER BY l.at DESC LIMIT 1
$$;

REVOKE ALL ON FUNCTION sb_panel_case_of(p_uniqueid text) FROM PUBLIC;
