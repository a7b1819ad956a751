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
