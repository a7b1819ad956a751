-- Per call since p_since, its best verification: full > callback (verified by
-- calling the agency back) > line-only > unverified (tried and failed, locked or
-- throttled).  Calls that never reached verification are not counted.
CREATE OR REPLACE FUNCTION sb_verify_split(p_since timestamptz)
RETURNS TABLE (level text, calls bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    WITH best AS (
        SELECT b.rank, b.calls FROM verify_bin b
         WHERE sb_kpi_binof(p_since) = p_since AND b.bin >= p_since
        UNION ALL
        SELECT max(sb_verify_rank(result)), 1 FROM audit_log
         WHERE sb_kpi_binof(p_since) <> p_since
           AND at >= p_since AND action = 'verify' AND uniqueid IS NOT NULL
           AND result NOT IN ('refused', 'error', 'shed')
         GROUP BY uniqueid)
    SELECT l.level, coalesce(sum(b.calls), 0)::bigint
      FROM (VALUES (4, 'full'), (3, 'callback'), (2, 'line-only'), (1, 'unverified'))
           AS l (rank, level)
      LEFT JOIN best b USING (rank)
     GROUP BY l.rank, l.level ORDER BY l.rank DESC
$$;

REVOKE ALL ON FUNCTION sb_verify_split(p_since timestamp with time zone) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sb_verify_split(p_since timestamp with time zone) TO sb_reports;
