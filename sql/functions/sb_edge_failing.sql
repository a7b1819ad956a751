-- The ten addresses failing most since p_since.
CREATE OR REPLACE FUNCTION sb_edge_failing(p_since timestamptz)
RETURNS TABLE (address text, failures bigint, last_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT * FROM sb_edge_failures(p_since) f ORDER BY f.failures DESC, f.address LIMIT 10
$$;

REVOKE ALL ON FUNCTION sb_edge_failing(p_since timestamp with time zone) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sb_edge_failing(p_since timestamp with time zone) TO sb_reports;
