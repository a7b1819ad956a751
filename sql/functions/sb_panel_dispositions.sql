CREATE OR REPLACE FUNCTION sb_panel_dispositions()
RETURNS TABLE (code text, label text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT code, label FROM disposition_code WHERE retired_at IS NULL ORDER BY sort, code
$$;

REVOKE ALL ON FUNCTION sb_panel_dispositions() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sb_panel_dispositions() TO sb_panel;
