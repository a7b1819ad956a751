-- The wall board's attested share: today's calls by what their caller ID's
-- check found (counts only; sb_reports reads no number).
CREATE OR REPLACE FUNCTION sb_caller_id_split(p_since timestamptz)
RETURNS TABLE (kind text, calls bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    WITH k AS (
        SELECT b.kind, b.calls FROM caller_id_bin b
         WHERE sb_kpi_binof(p_since) = p_since AND b.bin >= p_since
        UNION ALL
        SELECT sb_caller_id_kind(c.attest, c.result), 1 FROM caller_id_check c
         WHERE sb_kpi_binof(p_since) <> p_since AND c.checked_at >= p_since)
    SELECT l.kind, coalesce(sum(k.calls), 0)::bigint
      FROM (VALUES (1, 'attested-a'), (2, 'attested-bc'), (3, 'not-attested'), (4, 'failed'))
           AS l (n, kind)
      LEFT JOIN k USING (kind)
     GROUP BY l.n, l.kind ORDER BY l.n
$$;

REVOKE ALL ON FUNCTION sb_caller_id_split(p_since timestamp with time zone) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sb_caller_id_split(p_since timestamp with time zone) TO sb_reports;
