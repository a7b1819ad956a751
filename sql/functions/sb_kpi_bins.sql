-- The bins of [p_from, p_to) (15-minute aligned), computed from the call rows
-- by the same definitions as sb_kpi_queue: what a call counts as is
-- sb_call_class, a callback's queue sb_callback_queue; the sweep of callers
-- waiting is started from the number still waiting at p_from.
CREATE OR REPLACE FUNCTION sb_kpi_bins(p_from timestamptz, p_to timestamptz, p_short_s integer,
                            p_sl_s integer)
RETURNS SETOF kpi_bin LANGUAGE sql STABLE AS $$
WITH f AS (
    SELECT sb_kpi_binof(c.entered_at) AS b, c.*
      FROM sb_call_class(p_from, p_to, p_short_s, p_sl_s) c
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
           count(wait_s) FILTER (WHERE f.answered) AS wait_ans_n,
           coalesce(sum(wait_s) FILTER (WHERE f.answered), 0) AS wait_ans_sum,
           count(wait_s) FILTER (WHERE NOT f.in_progress) AS wait_end_n,
           coalesce(sum(wait_s) FILTER (WHERE NOT f.in_progress), 0) AS wait_end_sum,
           max(wait_s) AS max_wait,
           count(*) FILTER (WHERE f.handled) AS handle_n,
           coalesce(sum(talk_s + coalesce(wrapup_s, 0)) FILTER (WHERE f.handled), 0)
               AS handle_sum,
           count(*) FILTER (WHERE f.handled AND wrapup_s IS NULL) AS handle_nodisp
      FROM f GROUP BY GROUPING SETS ((b, f.queue), (b))
), cbs AS (
    SELECT b, coalesce(cb.q, '(all)') AS q, count(*) AS n
      FROM (SELECT sb_kpi_binof(requested_at) AS b, queue AS q
              FROM sb_callback_queue(p_from, p_to)) cb
     GROUP BY GROUPING SETS ((b, cb.q), (b))
), w AS (  -- the waits that matter to [p_from, p_to): still waiting at p_from, or
           -- starting or ending inside
    SELECT queue, entered_at, coalesce(answered_at, left_at, ended_at) AS wait_end
      FROM queue_call
     WHERE outcome IS DISTINCT FROM 'joined-empty'
       AND sb_wait_span(entered_at, coalesce(answered_at, left_at, ended_at))
           && tstzrange(p_from, p_to, '[)')
       AND entered_at < p_to
       AND (coalesce(answered_at, left_at, ended_at) >= p_from
            OR coalesce(answered_at, left_at, ended_at) IS NULL)
), base AS (  -- still waiting when p_from began: the sweep's starting count
    SELECT queue, count(*) AS n FROM w WHERE entered_at < p_from GROUP BY queue
), ev AS (  -- +1 when a caller starts waiting, -1 when the wait ends
    SELECT queue, entered_at AS t, 1 AS d FROM w WHERE entered_at >= p_from
    UNION ALL
    SELECT queue, wait_end, -1 FROM w WHERE wait_end IS NOT NULL AND wait_end < p_to
), run AS (
    SELECT ev.queue AS q, t, d,
           coalesce(base.n, 0) + sum(d) OVER (PARTITION BY ev.queue ORDER BY t, d
                                              ROWS UNBOUNDED PRECEDING) AS n
      FROM ev LEFT JOIN base ON base.queue = ev.queue
    UNION ALL
    SELECT '(all)', t, d, (SELECT coalesce(sum(n), 0) FROM base)
                          + sum(d) OVER (ORDER BY t, d ROWS UNBOUNDED PRECEDING) FROM ev
), peak AS (
    SELECT sb_kpi_binof(t) AS b, q, max(n) AS n FROM run WHERE d = 1 GROUP BY 1, 2
), keys AS (  -- a bin's peak counts even with no call of its own in the figures (a
              -- caller cut while waiting waits, but is not offered): its bucket may
    SELECT b, q FROM agg UNION SELECT b, q FROM cbs UNION SELECT b, q FROM peak
)
SELECT k.b, k.q,
       coalesce(a.offered, 0), coalesce(a.answered, 0), coalesce(a.abandoned, 0),
       coalesce(a.short_ab, 0), coalesce(a.ab_within_t, 0), coalesce(a.timeouts, 0),
       coalesce(a.overflowed, 0), coalesce(a.in_progress, 0), coalesce(a.answered_sl, 0),
       coalesce(a.wait_ans_n, 0), coalesce(a.wait_ans_sum, 0), coalesce(a.wait_end_n, 0),
       coalesce(a.wait_end_sum, 0), a.max_wait, coalesce(a.handle_n, 0),
       coalesce(a.handle_sum, 0), coalesce(a.handle_nodisp, 0), coalesce(cbs.n, 0),
       coalesce(peak.n, 0)
  FROM keys k
  LEFT JOIN agg a ON a.b = k.b AND a.q = k.q
  LEFT JOIN cbs ON cbs.b = k.b AND cbs.q = k.q
  LEFT JOIN peak ON peak.b = k.b AND peak.q = k.q
$$;
