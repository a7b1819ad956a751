-- Wrap-up measured by the agent panel (issue 12) feeds AHT (sql/kpi.md): an
-- answered call's handle time is its talk time plus its wrap-up, from the end
-- of the call to the save of its disposition (call_disposition.wrapup_s), or
-- plus W (the queue's wrapuptime, the old rule) when none was saved.
--
-- sb_call_fact gains wrapup_s; sb_kpi_queue and sb_kpi_agent are the functions
-- of 0005 with only their AHT lines changed (applied migrations are never
-- edited, so they are declared again here whole).

CREATE OR REPLACE VIEW sb_call_fact AS
SELECT c.node, c.uniqueid, c.queue, c.entered_at,
       CASE WHEN c.outcome = 'cut' THEN 'answered' ELSE c.outcome END AS outcome,
       c.hold_s, c.talk_s, c.rna_count, c.member_interface, c.member_name,
       coalesce(c.hold_s::numeric,
                extract(epoch FROM coalesce(c.answered_at, c.left_at, c.ended_at)
                                   - c.entered_at)::numeric(12, 3)) AS wait_s,
       coalesce(c.answered_at, c.left_at, c.ended_at) AS wait_end,
       d.wrapup_s
FROM queue_call c
LEFT JOIN call_disposition d ON d.uniqueid = c.uniqueid AND c.answered_at IS NOT NULL
WHERE c.outcome IS DISTINCT FROM 'joined-empty'
  AND (c.outcome IS DISTINCT FROM 'cut' OR c.answered_at IS NOT NULL);

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
WITH f AS (
    SELECT sb_bucket(entered_at, p_bucket, p_tz) AS b, *,
           outcome IN ('answered', 'transferred') AS is_answered,
           -- overflowed: left this queue unanswered and entered another one
           p_with_peak AND outcome IN ('timeout', 'left-empty') AND EXISTS (
               SELECT 1 FROM queue_call n
                WHERE n.node = x.node AND n.uniqueid = x.uniqueid AND n.queue <> x.queue
                  AND n.entered_at >= x.entered_at) AS overflowed
      FROM sb_call_fact x WHERE entered_at >= p_from AND entered_at < p_to
), agg AS (
    SELECT b, coalesce(f.queue, '(all)') AS q,
           count(*) AS offered,
           count(*) FILTER (WHERE is_answered) AS answered,
           count(*) FILTER (WHERE outcome = 'abandoned' AND wait_s >= p_short_s) AS abandoned,
           count(*) FILTER (WHERE outcome = 'abandoned' AND wait_s < p_short_s) AS short_ab,
           count(*) FILTER (WHERE outcome = 'abandoned' AND wait_s < p_sl_s) AS ab_within_t,
           count(*) FILTER (WHERE outcome = 'timeout') AS timeouts,
           count(*) FILTER (WHERE f.overflowed) AS overflowed,
           count(*) FILTER (WHERE outcome IS NULL) AS in_progress,
           count(*) FILTER (WHERE is_answered AND wait_s <= p_sl_s) AS answered_sl,
           avg(wait_s) FILTER (WHERE is_answered) AS asa,
           avg(wait_s) FILTER (WHERE outcome IS NOT NULL) AS avg_wait,
           max(wait_s) AS max_wait,
           -- handle time: talk + the wrap-up measured by the disposition, else W
           avg(talk_s + coalesce(wrapup_s, p_wrapup_s))
               FILTER (WHERE is_answered AND talk_s IS NOT NULL) AS handle
      FROM f GROUP BY GROUPING SETS ((b, f.queue), (b))
), cb AS (  -- a callback counts for the last queue the call was in, and for '(all)'
    SELECT sb_bucket(r.requested_at, p_bucket, p_tz) AS b,
           coalesce(q.queue, '(none)') AS q
      FROM callback_request r
      LEFT JOIN LATERAL (SELECT c.queue FROM queue_call c WHERE c.uniqueid = r.uniqueid
                          ORDER BY c.entered_at DESC LIMIT 1) q ON true
     WHERE r.requested_at >= p_from AND r.requested_at < p_to
), cbs AS (
    SELECT b, coalesce(cb.q, '(all)') AS q, count(*) AS n
      FROM cb GROUP BY GROUPING SETS ((b, cb.q), (b))
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

CREATE OR REPLACE FUNCTION sb_kpi_agent(
    p_from timestamptz, p_to timestamptz, p_bucket text DEFAULT 'day',
    p_tz text DEFAULT 'UTC', p_wrapup_s integer DEFAULT 0)
RETURNS TABLE (bucket timestamptz, interface text, member_name text, logged_in_s numeric,
               available_s numeric, on_call_s numeric, ringing_s numeric, paused_s numeric,
               paused_by_reason jsonb, calls_answered bigint, ring_no_answer bigint,
               aht_s numeric, occupancy numeric)
LANGUAGE sql STABLE AS $$
WITH seg AS (
    SELECT sb_bucket(seg_start, p_bucket, p_tz) AS b, s.*,
           extract(epoch FROM seg_end - seg_start)::numeric AS secs
      FROM sb_agent_segments(p_from, p_to, p_bucket, p_tz) s
), st AS (
    SELECT b, interface, max(member_name) AS member_name,
           sum(secs) FILTER (WHERE state IN ('available', 'ringing', 'on_call', 'paused'))
               AS logged_in,
           coalesce(sum(secs) FILTER (WHERE state = 'available'), 0) AS available,
           coalesce(sum(secs) FILTER (WHERE state = 'on_call'), 0) AS on_call,
           coalesce(sum(secs) FILTER (WHERE state = 'ringing'), 0) AS ringing,
           coalesce(sum(secs) FILTER (WHERE state = 'paused'), 0) AS paused
      FROM seg GROUP BY b, interface
), pr AS (
    SELECT b, interface, jsonb_object_agg(coalesce(reason, '(none)'), secs) AS by_reason
      FROM (SELECT b, interface, reason, round(sum(secs), 1) AS secs FROM seg
             WHERE state = 'paused' GROUP BY b, interface, reason) x
     GROUP BY b, interface
), calls AS (
    SELECT sb_bucket(entered_at, p_bucket, p_tz) AS b, member_interface AS interface,
           count(*) AS answered,
           avg(talk_s + coalesce(wrapup_s, p_wrapup_s)) AS handle
      FROM sb_call_fact
     WHERE outcome IN ('answered', 'transferred') AND entered_at >= p_from
       AND entered_at < p_to AND member_interface IS NOT NULL
     GROUP BY 1, 2
), rna AS (
    SELECT sb_bucket(event_time, p_bucket, p_tz) AS b, interface, count(*) AS n
      FROM ami_event WHERE event = 'AgentRingNoAnswer' AND event_time >= p_from
       AND event_time < p_to AND interface IS NOT NULL
     GROUP BY 1, 2
)
SELECT st.b, st.interface, st.member_name, round(coalesce(st.logged_in, 0), 1),
       round(st.available, 1), round(st.on_call, 1), round(st.ringing, 1),
       round(st.paused, 1), coalesce(pr.by_reason, '{}'::jsonb),
       coalesce(calls.answered, 0), coalesce(rna.n, 0),
       round(calls.handle, 1),
       round(st.on_call / nullif(st.on_call + st.available + st.ringing, 0), 4)
  FROM st
  LEFT JOIN pr ON pr.b = st.b AND pr.interface = st.interface
  LEFT JOIN calls ON calls.b = st.b AND calls.interface = st.interface
  LEFT JOIN rna ON rna.b = st.b AND rna.interface = st.interface
 ORDER BY st.b, st.interface
$$;
