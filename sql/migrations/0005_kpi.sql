-- Call-center figures.  Every definition is written once, in sql/kpi.md; the
-- names below are the ones used there.  Functions, not materialised tables: they
-- read queue_call, agent_state, callback_request and ami_event as they are now.

-- The interval a time falls in: '15min', 'hour' or 'day', in time zone p_tz.
CREATE FUNCTION sb_bucket(t timestamptz, p_bucket text, p_tz text) RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE p_bucket
        WHEN '15min' THEN date_bin('15 minutes', t AT TIME ZONE p_tz,
                                   timestamp '2000-01-01') AT TIME ZONE p_tz
        WHEN 'hour' THEN date_trunc('hour', t AT TIME ZONE p_tz) AT TIME ZONE p_tz
        WHEN 'day' THEN date_trunc('day', t AT TIME ZONE p_tz) AT TIME ZONE p_tz
    END
$$;

-- One row per queued call with what the figures need.  A caller refused by an
-- empty queue (joined-empty) never entered it and is not here.
--   wait_s      Asterisk's HoldTime: until an agent answered, or until the call
--               left the queue (abandon, timeout); else measured from the rows
--   wait_end    when the wait ended (NULL: still waiting)
CREATE VIEW sb_call_fact AS
SELECT c.node, c.uniqueid, c.queue, c.entered_at, c.outcome, c.hold_s, c.talk_s,
       c.rna_count, c.member_interface, c.member_name,
       coalesce(c.hold_s::numeric,
                extract(epoch FROM coalesce(c.answered_at, c.left_at, c.ended_at)
                                   - c.entered_at)::numeric(12, 3)) AS wait_s,
       coalesce(c.answered_at, c.left_at, c.ended_at) AS wait_end
FROM queue_call c
WHERE c.outcome IS DISTINCT FROM 'joined-empty';

-- Queue figures per interval, per queue and for all queues (queue = '(all)').
CREATE FUNCTION sb_kpi_queue(
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
           avg(talk_s) FILTER (WHERE is_answered AND talk_s IS NOT NULL) AS talk
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
       round(a.talk + p_wrapup_s, 1),
       coalesce(peak.n, 0)
  FROM agg a
  LEFT JOIN cbs ON cbs.b = a.b AND cbs.q = a.q
  LEFT JOIN peak ON peak.b = a.b AND peak.q = a.q
 ORDER BY a.b, a.q = '(all)', a.q
$$;

-- Agent figures per interval.  An agent (interface) is in several queues at
-- once; at each moment its state is the busiest of its queue memberships:
-- on_call > ringing > paused > available > unavailable/unknown.
CREATE FUNCTION sb_agent_segments(p_from timestamptz, p_to timestamptz, p_bucket text,
                                  p_tz text)
RETURNS TABLE (interface text, member_name text, state text, reason text,
               seg_start timestamptz, seg_end timestamptz)
LANGUAGE sql STABLE AS $$
WITH iv AS (
    SELECT a.interface, a.member_name, a.state, a.reason,
           greatest(a.started_at, p_from) AS s,
           least(coalesce(a.ended_at, now()), p_to) AS e,
           CASE a.state WHEN 'on_call' THEN 1 WHEN 'ringing' THEN 2 WHEN 'paused' THEN 3
                        WHEN 'available' THEN 4 ELSE 5 END AS rank
      FROM agent_state a
     WHERE a.started_at < p_to AND coalesce(a.ended_at, now()) > p_from
), pts AS (
    SELECT interface, s AS t FROM iv UNION SELECT interface, e FROM iv
    UNION
    SELECT DISTINCT iv.interface, g
      FROM iv, generate_series(sb_bucket(p_from, p_bucket, p_tz), p_to,
                               CASE p_bucket WHEN '15min' THEN interval '15 minutes'
                                             WHEN 'hour' THEN interval '1 hour'
                                             ELSE interval '1 day' END) g
     WHERE g > p_from AND g < p_to
), seg AS (
    SELECT interface, t AS s, lead(t) OVER (PARTITION BY interface ORDER BY t) AS e FROM pts
)
SELECT seg.interface, best.member_name, best.state, best.reason, seg.s, seg.e
  FROM seg
  JOIN LATERAL (SELECT iv.member_name, iv.state, iv.reason FROM iv
                 WHERE iv.interface = seg.interface AND iv.s <= seg.s AND iv.e >= seg.e
                 ORDER BY iv.rank LIMIT 1) best ON true
 WHERE seg.e IS NOT NULL AND seg.e > seg.s
$$;

CREATE FUNCTION sb_kpi_agent(
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
           count(*) AS answered, avg(talk_s) AS talk
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
       round(calls.talk + p_wrapup_s, 1),
       round(st.on_call / nullif(st.on_call + st.available + st.ringing, 0), 4)
  FROM st
  LEFT JOIN pr ON pr.b = st.b AND pr.interface = st.interface
  LEFT JOIN calls ON calls.b = st.b AND calls.interface = st.interface
  LEFT JOIN rna ON rna.b = st.b AND rna.interface = st.interface
 ORDER BY st.b, st.interface
$$;

-- Live, per queue: callers waiting now and the longest current wait; agents
-- available / on a call / paused now (busiest state per agent, per queue).
CREATE FUNCTION sb_live_queues()
RETURNS TABLE (queue text, waiting bigint, longest_wait_s numeric, oldest_entered_at timestamptz,
               agents_available bigint, agents_on_call bigint, agents_paused bigint,
               paused_reasons jsonb)
LANGUAGE sql STABLE AS $$
WITH w AS (
    SELECT queue, count(*) AS n, min(entered_at) AS oldest FROM queue_call
     WHERE outcome IS NULL AND answered_at IS NULL AND ended_at IS NULL
       AND entered_at > now() - interval '1 day'
     GROUP BY queue
), a AS (
    SELECT DISTINCT ON (queue, interface) queue, interface, state, reason FROM agent_state
     WHERE ended_at IS NULL
     ORDER BY queue, interface,
              CASE state WHEN 'on_call' THEN 1 WHEN 'ringing' THEN 2 WHEN 'paused' THEN 3
                         WHEN 'available' THEN 4 ELSE 5 END
), ag AS (
    SELECT queue,
           count(*) FILTER (WHERE state = 'available') AS avail,
           count(*) FILTER (WHERE state IN ('on_call', 'ringing')) AS busy,
           count(*) FILTER (WHERE state = 'paused') AS paused,
           coalesce(jsonb_object_agg(coalesce(reason, '(none)'), 1)
                    FILTER (WHERE state = 'paused'), '{}'::jsonb) AS reasons_seen
      FROM a GROUP BY queue
), reasons AS (
    SELECT queue, jsonb_object_agg(r, n) AS by_reason FROM (
        SELECT queue, coalesce(reason, '(none)') AS r, count(*) AS n FROM a
         WHERE state = 'paused' GROUP BY 1, 2) x GROUP BY queue
), qs AS (
    SELECT queue FROM w UNION SELECT queue FROM ag
)
SELECT qs.queue, coalesce(w.n, 0),
       round(extract(epoch FROM now() - w.oldest)::numeric, 1), w.oldest,
       coalesce(ag.avail, 0), coalesce(ag.busy, 0), coalesce(ag.paused, 0),
       coalesce(reasons.by_reason, '{}'::jsonb)
  FROM qs LEFT JOIN w USING (queue) LEFT JOIN ag USING (queue)
  LEFT JOIN reasons USING (queue)
 ORDER BY qs.queue
$$;

-- Push for the wall board: one notification per committed statement that
-- changed calls or agent states (statement-level: a 5,000-row batch is one).
CREATE FUNCTION sb_notify_live() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('sb_live', TG_TABLE_NAME);
    RETURN NULL;
END $$;
CREATE TRIGGER queue_call_notify AFTER INSERT OR UPDATE ON queue_call
    FOR EACH STATEMENT EXECUTE FUNCTION sb_notify_live();
CREATE TRIGGER agent_state_notify AFTER INSERT OR UPDATE ON agent_state
    FOR EACH STATEMENT EXECUTE FUNCTION sb_notify_live();

-- The role reports and the wall board read with: the views and functions only.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sb_reports') THEN
        BEGIN
            CREATE ROLE sb_reports NOLOGIN;
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE NOTICE 'role sb_reports not created (no CREATEROLE); reports run as the owner';
        END;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sb_reports') THEN
        EXECUTE 'GRANT SELECT ON queue_call, agent_state, callback_request, listener_gap, '
                'ami_event, sb_call_fact TO sb_reports';
    END IF;
END $$;
