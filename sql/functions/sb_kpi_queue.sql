-- Queue figures per interval, per queue and for all queues (queue = '(all)').
CREATE OR REPLACE FUNCTION sb_kpi_queue(
    p_from timestamptz, p_to timestamptz, p_bucket text DEFAULT 'day',
    p_tz text DEFAULT 'UTC', p_short_s integer DEFAULT 5, p_sl_s integer DEFAULT 20,
    p_sl_variant text DEFAULT 'offered_excl_short', p_wrapup_s integer DEFAULT 0,
    -- false: leave out the two costly figures, max_waiting and overflowed (0)
    p_with_peak boolean DEFAULT true)
RETURNS TABLE (bucket timestamptz, queue text, offered bigint, answered bigint,
               abandoned bigint, short_abandoned bigint, timeouts bigint,
               overflowed bigint, callbacks bigint, in_progress bigint,
               answered_within_sl bigint, asa_s numeric, avg_wait_s numeric,
               max_wait_s numeric, service_level numeric, abandon_rate numeric,
               aht_s numeric, max_waiting bigint)
LANGUAGE sql STABLE AS $$
WITH f AS (  -- what each call counts as: sb_call_class, shared with sb_kpi_bins
    SELECT sb_bucket(c.entered_at, p_bucket, p_tz) AS b, c.*
      FROM sb_call_class(p_from, p_to, p_short_s, p_sl_s, p_with_peak) c
), agg AS (
    SELECT b, coalesce(f.queue, '(all)') AS q,
           count(*) AS offered,
           count(*) FILTER (WHERE f.answered) AS answered,
           count(*) FILTER (WHERE f.abandoned) AS abandoned,
           count(*) FILTER (WHERE f.short_abandoned) AS short_ab,
           count(*) FILTER (WHERE f.ab_within_t) AS ab_within_t,
           count(*) FILTER (WHERE f.timeout) AS timeouts,
           count(*) FILTER (WHERE f.overflowed) AS overflowed,
           count(*) FILTER (WHERE f.in_progress) AS in_progress,
           count(*) FILTER (WHERE f.answered_sl) AS answered_sl,
           avg(wait_s) FILTER (WHERE f.answered) AS asa,
           avg(wait_s) FILTER (WHERE NOT f.in_progress) AS avg_wait,
           max(wait_s) AS max_wait,
           -- handle time: talk + the wrap-up measured by the disposition, else W
           avg(talk_s + coalesce(wrapup_s, p_wrapup_s)) FILTER (WHERE f.handled) AS handle
      FROM f GROUP BY GROUPING SETS ((b, f.queue), (b))
), cbs AS (  -- a callback counts for the last queue the call was in, and for '(all)'
    SELECT b, coalesce(cb.q, '(all)') AS q, count(*) AS n
      FROM (SELECT sb_bucket(requested_at, p_bucket, p_tz) AS b, queue AS q
              FROM sb_callback_queue(p_from, p_to)) cb
     GROUP BY GROUPING SETS ((b, cb.q), (b))
), w AS (  -- waits, from queue_call itself (sb_call_fact's overflow test is not needed)
    SELECT queue, entered_at, coalesce(answered_at, left_at, ended_at) AS wait_end
      FROM queue_call
     WHERE p_with_peak  -- the costliest figure: the wall board does without it
       AND outcome IS DISTINCT FROM 'joined-empty' AND entered_at < p_to
       AND coalesce(answered_at, left_at, ended_at, 'infinity') > p_from - interval '1 day'
), ev AS (  -- +1 when a caller starts waiting, -1 when the wait ends
    SELECT queue, entered_at AS t, 1 AS d FROM w
    UNION ALL
    SELECT queue, wait_end, -1 FROM w WHERE wait_end IS NOT NULL
), run AS (
    SELECT queue AS q, t, d, sum(d) OVER (PARTITION BY queue ORDER BY t, d
                                          ROWS UNBOUNDED PRECEDING) AS n FROM ev
    UNION ALL
    SELECT '(all)', t, d, sum(d) OVER (ORDER BY t, d ROWS UNBOUNDED PRECEDING) FROM ev
), peak AS (
    SELECT sb_bucket(t, p_bucket, p_tz) AS b, q, max(n) AS n FROM run
     WHERE d = 1 AND t >= p_from AND t < p_to GROUP BY 1, 2
)
SELECT a.b, a.q, a.offered, a.answered, a.abandoned, a.short_ab, a.timeouts, a.overflowed,
       coalesce(cbs.n, 0), a.in_progress, a.answered_sl,
       round(a.asa, 1), round(a.avg_wait, 1), a.max_wait,
       round(a.answered_sl::numeric / nullif(CASE p_sl_variant
            WHEN 'offered_excl_short' THEN a.offered - a.in_progress - a.short_ab
            WHEN 'offered' THEN a.offered - a.in_progress
            WHEN 'answered' THEN a.answered
            WHEN 'offered_excl_abandoned_within_t' THEN a.offered - a.in_progress - a.ab_within_t
        END, 0), 4),
       round(a.abandoned::numeric / nullif(a.offered - a.in_progress - a.short_ab, 0), 4),
       round(a.handle, 1),
       coalesce(peak.n, 0)
  FROM agg a
  LEFT JOIN cbs ON cbs.b = a.b AND cbs.q = a.q
  LEFT JOIN peak ON peak.b = a.b AND peak.q = a.q
 ORDER BY a.b, a.q = '(all)', a.q
$$;
