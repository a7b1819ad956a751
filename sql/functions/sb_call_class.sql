-- What each queued call counts as in the figures (sql/kpi.md, "Queue figures"):
-- the one place these definitions are written.  Both paths aggregate it, the
-- per-call one (sb_kpi_queue, any interval) and the per-bin one (sb_kpi_bins,
-- the stored quarter hours), so they cannot drift apart.  One row per call of
-- sb_call_fact that entered the queue in [p_from, p_to).  An inlined SQL
-- function: the planner sees through it.
--   answered      answered (a transferred call was answered first)
--   abandoned     hung up waiting, after p_short_s or more (short_abandoned: before)
--   ab_within_t   hung up waiting within p_sl_s (one service-level variant)
--   timeout       left at the queue's timeout
--   overflowed    left this queue unanswered (timeout or emptied) and entered
--                 another one (p_with_overflow false: not worked out, false)
--   in_progress   not ended yet
--   answered_sl   answered within p_sl_s
--   handled       answered with a talk time (the handle time's calls)
CREATE OR REPLACE FUNCTION sb_call_class(p_from timestamptz, p_to timestamptz,
                                         p_short_s integer, p_sl_s integer,
                                         p_with_overflow boolean DEFAULT true)
RETURNS TABLE (queue text, entered_at timestamptz, wait_s numeric, talk_s integer,
               wrapup_s numeric, answered boolean, abandoned boolean,
               short_abandoned boolean, ab_within_t boolean, timeout boolean,
               overflowed boolean, in_progress boolean, answered_sl boolean,
               handled boolean)
LANGUAGE sql STABLE AS $$
    SELECT x.queue, x.entered_at, x.wait_s, x.talk_s, x.wrapup_s,
           coalesce(x.outcome IN ('answered', 'transferred'), false),
           coalesce(x.outcome = 'abandoned' AND x.wait_s >= p_short_s, false),
           coalesce(x.outcome = 'abandoned' AND x.wait_s < p_short_s, false),
           coalesce(x.outcome = 'abandoned' AND x.wait_s < p_sl_s, false),
           coalesce(x.outcome = 'timeout', false),
           p_with_overflow AND coalesce(x.outcome IN ('timeout', 'left-empty'), false)
           AND EXISTS (SELECT 1 FROM queue_call n
                        WHERE n.node = x.node AND n.uniqueid = x.uniqueid
                          AND n.queue <> x.queue AND n.entered_at >= x.entered_at),
           x.outcome IS NULL,
           coalesce(x.outcome IN ('answered', 'transferred') AND x.wait_s <= p_sl_s, false),
           coalesce(x.outcome IN ('answered', 'transferred') AND x.talk_s IS NOT NULL, false)
      FROM sb_call_fact x
     WHERE x.entered_at >= p_from AND x.entered_at < p_to
$$;
