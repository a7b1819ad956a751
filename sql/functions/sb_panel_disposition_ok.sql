-- A disposition the site offers now.
CREATE OR REPLACE FUNCTION sb_panel_disposition_ok(p_code text) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT EXISTS (SELECT 1 FROM disposition_code WHERE code = p_code AND retired_at IS NULL)
$$;

REVOKE ALL ON FUNCTION sb_panel_disposition_ok(p_code text) FROM PUBLIC;
