-- Every bin of [p_from, p_to) from scratch (first install, a change of the
-- thresholds, a restore): marks them dirty and refreshes.
CREATE OR REPLACE FUNCTION sb_kpi_rebuild(p_from timestamptz, p_to timestamptz) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    INSERT INTO kpi_dirty
    SELECT generate_series(sb_kpi_binof(p_from), p_to - interval '1 microsecond',
                           interval '15 minutes')
    ON CONFLICT (bin) DO UPDATE SET bin = EXCLUDED.bin;
    RETURN sb_kpi_refresh();
END $$;

REVOKE ALL ON FUNCTION sb_kpi_rebuild(p_from timestamp with time zone, p_to timestamp with time zone) FROM PUBLIC;
