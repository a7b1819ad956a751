-- Recompute the mix's dirty bins, a contiguous run of one part at a time;
-- returns how many (bin, part).  As sb_kpi_refresh: callers take turns (an
-- advisory lock), and the dirty rows are locked first, in the order writers
-- mark them, so a writer's uncommitted rows are waited for, never missed.
CREATE OR REPLACE FUNCTION sb_mix_refresh() RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    r    record;
    done integer := 0;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('sb_mix_refresh'));
    PERFORM 1 FROM report_mix_dirty ORDER BY bin, part FOR UPDATE;
    FOR r IN
        WITH d AS (DELETE FROM report_mix_dirty RETURNING bin, part)
        SELECT a.part, x.* FROM (SELECT part, array_agg(bin) AS bins FROM d GROUP BY part) a,
               sb_bin_runs(a.bins) x
    LOOP
        DELETE FROM report_mix_bin WHERE part = r.part AND bin >= r.lo AND bin < r.hi;
        INSERT INTO report_mix_bin SELECT * FROM sb_mix_rows(r.lo, r.hi, ARRAY[r.part]);
        done := done + r.n;
    END LOOP;
    RETURN done;
END $$;
ALTER FUNCTION sb_mix_refresh() SET jit = off;

REVOKE ALL ON FUNCTION sb_mix_refresh() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sb_mix_refresh() TO sb_reports;
