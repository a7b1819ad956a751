-- --- the figures -----------------------------------------------------------------------
-- sb_kpi_queue's answer (same columns, same rows, same rounding), from the bins
-- when the range is 15-minute aligned and the thresholds are the site's; else
-- from the call rows.  Refreshes the dirty bins first.
CREATE OR REPLACE FUNCTION sb_kpi_figures(
    p_from timestamptz, p_to timestamptz, p_bucket text DEFAULT 'day',
    p_tz text DEFAULT 'UTC', p_short_s integer DEFAULT 5, p_sl_s integer DEFAULT 20,
    p_sl_variant text DEFAULT 'offered_excl_short', p_wrapup_s integer DEFAULT 0)
RETURNS TABLE (bucket timestamptz, queue text, offered bigint, answered bigint,
               abandoned bigint, short_abandoned bigint, timeouts bigint,
               overflowed bigint, callbacks bigint, in_progress bigint,
               answered_within_sl bigint, asa_s numeric, avg_wait_s numeric,
               max_wait_s numeric, service_level numeric, abandon_rate numeric,
               aht_s numeric, max_waiting bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    cfg kpi_agg_config;
BEGIN
    SELECT * INTO cfg FROM kpi_agg_config;
    IF p_short_s IS DISTINCT FROM cfg.short_s OR p_sl_s IS DISTINCT FROM cfg.sl_s
       OR sb_kpi_binof(p_from) <> p_from OR sb_kpi_binof(p_to) <> p_to THEN
        RETURN QUERY SELECT * FROM sb_kpi_queue(p_from, p_to, p_bucket, p_tz, p_short_s,
                                                p_sl_s, p_sl_variant, p_wrapup_s);
        RETURN;
    END IF;
    PERFORM sb_kpi_refresh();
    RETURN QUERY
    WITH a AS (
        SELECT sb_bucket(k.bin, p_bucket, p_tz) AS b, k.queue AS q,
               sum(k.offered)::bigint AS offered, sum(k.answered)::bigint AS answered,
               sum(k.abandoned)::bigint AS abandoned, sum(k.short_ab)::bigint AS short_ab,
               sum(k.ab_within_t)::bigint AS ab_within_t, sum(k.timeouts)::bigint AS timeouts,
               sum(k.overflowed)::bigint AS overflowed, sum(k.callbacks)::bigint AS callbacks,
               sum(k.in_progress)::bigint AS in_progress,
               sum(k.answered_sl)::bigint AS answered_sl,
               sum(k.wait_ans_n) AS wait_ans_n, sum(k.wait_ans_sum) AS wait_ans_sum,
               sum(k.wait_end_n) AS wait_end_n, sum(k.wait_end_sum) AS wait_end_sum,
               max(k.max_wait) AS max_wait, sum(k.handle_n) AS handle_n,
               sum(k.handle_sum) AS handle_sum, sum(k.handle_nodisp) AS handle_nodisp,
               max(k.max_waiting)::bigint AS max_waiting
          FROM kpi_bin k WHERE k.bin >= p_from AND k.bin < p_to
         GROUP BY 1, 2
    )
    SELECT a.b, a.q, a.offered, a.answered, a.abandoned, a.short_ab, a.timeouts,
           a.overflowed, a.callbacks, a.in_progress, a.answered_sl,
           round(a.wait_ans_sum / nullif(a.wait_ans_n, 0), 1),
           round(a.wait_end_sum / nullif(a.wait_end_n, 0), 1),
           a.max_wait,
           round(a.answered_sl::numeric / nullif(CASE p_sl_variant
                WHEN 'offered_excl_short' THEN a.offered - a.in_progress - a.short_ab
                WHEN 'offered' THEN a.offered - a.in_progress
                WHEN 'answered' THEN a.answered
                WHEN 'offered_excl_abandoned_within_t'
                     THEN a.offered - a.in_progress - a.ab_within_t
            END, 0), 4),
           round(a.abandoned::numeric / nullif(a.offered - a.in_progress - a.short_ab, 0), 4),
           round((a.handle_sum + a.handle_nodisp * p_wrapup_s) / nullif(a.handle_n, 0), 1),
           a.max_waiting
      FROM a WHERE a.offered > 0
     ORDER BY a.b, a.q = '(all)', a.q;
END $$;

REVOKE ALL ON FUNCTION sb_kpi_figures(p_from timestamp with time zone, p_to timestamp with time zone, p_bucket text, p_tz text, p_short_s integer, p_sl_s integer, p_sl_variant text, p_wrapup_s integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sb_kpi_figures(p_from timestamp with time zone, p_to timestamp with time zone, p_bucket text, p_tz text, p_short_s integer, p_sl_s integer, p_sl_variant text, p_wrapup_s integer) TO sb_reports;
