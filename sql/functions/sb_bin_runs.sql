-- 15-minute bins as contiguous runs [lo, hi), each with its number of bins:
-- the refreshes (sb_kpi_refresh, sb_mix_refresh) recompute a run at a time.
CREATE OR REPLACE FUNCTION sb_bin_runs(p_bins timestamptz[])
RETURNS TABLE (lo timestamptz, hi timestamptz, n bigint)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT min(b), max(b) + interval '15 minutes', count(*)
      FROM (SELECT b, b - (row_number() OVER (ORDER BY b)) * interval '15 minutes' AS grp
              FROM unnest(p_bins) b) g
     GROUP BY grp ORDER BY 1
$$;
