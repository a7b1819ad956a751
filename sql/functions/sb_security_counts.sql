-- For ops' alerts (the wall board's Prometheus gauges): how many locks, blocks,
-- shed attempts and refused finishes or lookups since a time, and nothing else
-- of the audit log (sb_reports cannot read it).
CREATE OR REPLACE FUNCTION sb_security_counts(p_since timestamptz)
RETURNS TABLE (kind text, n bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    WITH r AS (
        SELECT action, result FROM audit_log
         WHERE at >= p_since
           AND (action IN ('lockout', 'throttle', 'shed', 'refused')
                OR result IN ('lockout', 'throttle', 'shed', 'refused')))
    SELECT k, count(r.*) FROM unnest(ARRAY['lockout', 'throttle', 'shed', 'refused']) k
      LEFT JOIN r ON r.action = k OR r.result = k
     GROUP BY k ORDER BY k
$$;

REVOKE ALL ON FUNCTION sb_security_counts(p_since timestamp with time zone) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sb_security_counts(p_since timestamp with time zone) TO sb_reports;
