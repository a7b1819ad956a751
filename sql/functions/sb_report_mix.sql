-- The reports' mix of a range (counts only; sql/kpi.md "The mix"): from the
-- bins (report_mix_bin, refreshed first) when the range is 15-minute aligned,
-- as every report and page range is; else from the rows.  Either way the
-- definitions are sb_mix_rows'.
CREATE OR REPLACE FUNCTION sb_report_mix(p_from timestamptz, p_to timestamptz)
RETURNS TABLE (part text, kind text, n bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF sb_kpi_binof(p_from) = p_from AND sb_kpi_binof(p_to) = p_to THEN
        PERFORM sb_mix_refresh();
        RETURN QUERY
        SELECT b.part, b.kind, sum(b.n)::bigint FROM report_mix_bin b
         WHERE b.bin >= p_from AND b.bin < p_to
         GROUP BY b.part, b.kind ORDER BY 1, 2;
    ELSE
        RETURN QUERY
        SELECT x.part, x.kind, sum(x.n)::bigint
          FROM sb_mix_rows(p_from, p_to, ARRAY['verification', 'caller_id', 'callbacks',
                                               'dispositions', 'transfers']) x
         GROUP BY x.part, x.kind ORDER BY 1, 2;
    END IF;
END $$;
ALTER FUNCTION sb_report_mix(p_from timestamp with time zone, p_to timestamp with time zone) SET jit = off;

REVOKE ALL ON FUNCTION sb_report_mix(p_from timestamp with time zone, p_to timestamp with time zone) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sb_report_mix(p_from timestamp with time zone, p_to timestamp with time zone) TO sb_reports;
