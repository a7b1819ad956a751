-- Recompute the dirty bins, a contiguous run at a time; returns how many bins.
-- Concurrent callers take turns (an advisory lock).  Writers mark a bin with
-- an upsert that locks its row until they commit; the refresh locks the dirty
-- rows first (in bin order, as writers do: no deadlock), so it never takes a
-- bin away from a writer whose rows it cannot see yet: it waits for it.
CREATE OR REPLACE FUNCTION sb_kpi_refresh() RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    cfg  kpi_agg_config;
    r    record;
    done integer := 0;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('sb_kpi_refresh'));
    SELECT * INTO cfg FROM kpi_agg_config;
    PERFORM 1 FROM kpi_dirty ORDER BY bin FOR UPDATE;
    FOR r IN
        WITH d AS (DELETE FROM kpi_dirty RETURNING bin)
        SELECT x.* FROM (SELECT array_agg(bin) AS bins FROM d) a, sb_bin_runs(a.bins) x
    LOOP
        DELETE FROM kpi_bin WHERE bin >= r.lo AND bin < r.hi;
        INSERT INTO kpi_bin SELECT * FROM sb_kpi_bins(r.lo, r.hi, cfg.short_s, cfg.sl_s);
        done := done + r.n;
    END LOOP;
    RETURN done;
END $$;
ALTER FUNCTION sb_kpi_refresh() SET jit = off;

REVOKE ALL ON FUNCTION sb_kpi_refresh() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sb_kpi_refresh() TO sb_reports;
