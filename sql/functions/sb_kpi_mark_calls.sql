-- --- what marks bins dirty -----------------------------------------------------------
-- A queue_call row's bins: from its entry to the end of its wait (or now, while it
-- waits: it counts as waiting in each), and the entry bins of the call's other
-- rows (their overflow) and its callback requests (their last queue).
CREATE OR REPLACE FUNCTION sb_kpi_mark_calls(p_rows queue_call[]) RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    WITH changed AS (
        SELECT node, uniqueid, entered_at,
               coalesce(answered_at, left_at, ended_at) AS wait_end
          FROM unnest(p_rows)
    ), spans AS (
        SELECT sb_kpi_binof(entered_at) AS lo,
               sb_kpi_binof(least(coalesce(wait_end, now()), now())) AS hi FROM changed
        UNION ALL
        SELECT sb_kpi_binof(c.entered_at), sb_kpi_binof(c.entered_at)
          FROM queue_call c JOIN (SELECT DISTINCT node, uniqueid FROM changed) x
               USING (node, uniqueid)
        UNION ALL
        SELECT sb_kpi_binof(r.requested_at), sb_kpi_binof(r.requested_at)
          FROM callback_request r JOIN (SELECT DISTINCT uniqueid FROM changed) x
               USING (uniqueid)
    )
    INSERT INTO kpi_dirty
    SELECT DISTINCT generate_series(lo, greatest(lo, hi), interval '15 minutes') FROM spans
     ORDER BY 1
    ON CONFLICT (bin) DO UPDATE SET bin = EXCLUDED.bin  -- locks it (see sb_kpi_refresh)
$$;

REVOKE ALL ON FUNCTION sb_kpi_mark_calls(p_rows queue_call[]) FROM PUBLIC;
