-- A part's bins, marked dirty for sb_mix_refresh (in bin order, locking each
-- mark until the writer commits: see sb_mix_refresh).
CREATE OR REPLACE FUNCTION sb_mix_mark(p_times timestamptz[], p_part text)
RETURNS void LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    INSERT INTO report_mix_dirty (bin, part)
    SELECT DISTINCT sb_kpi_binof(t), p_part FROM unnest(p_times) t WHERE t IS NOT NULL
     ORDER BY 1
    ON CONFLICT (bin, part) DO UPDATE SET bin = EXCLUDED.bin
$$;

REVOKE ALL ON FUNCTION sb_mix_mark(p_times timestamp with time zone[], p_part text) FROM PUBLIC;
