-- A disposition (the call's wrap-up, in AHT) or a callback request: the entry
-- bins of the call's queue rows, and the request's own bin.
CREATE OR REPLACE FUNCTION sb_kpi_mark_uniqueids(p_uniqueids text[], p_times timestamptz[])
RETURNS void LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    INSERT INTO kpi_dirty
    SELECT b FROM (
        SELECT sb_kpi_binof(c.entered_at) AS b FROM queue_call c
         WHERE c.uniqueid = ANY (p_uniqueids)
        UNION
        SELECT sb_kpi_binof(t) FROM unnest(p_times) t WHERE t IS NOT NULL) x
     ORDER BY b
    ON CONFLICT (bin) DO UPDATE SET bin = EXCLUDED.bin
$$;

REVOKE ALL ON FUNCTION sb_kpi_mark_uniqueids(p_uniqueids text[], p_times timestamp with time zone[]) FROM PUBLIC;
