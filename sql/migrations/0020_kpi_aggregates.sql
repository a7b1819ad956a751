-- Figures at 100x the reference volume (issue 15): per-interval aggregates.
--
-- kpi_bin holds, per 15-minute UTC bin and queue (and '(all)'), the additive
-- parts of every figure of sb_kpi_queue (sql/kpi.md): counts, sums and maxima.
-- Every time zone's hours and days are unions of such bins (offsets are
-- multiples of 15 minutes), so a day, an hour or a quarter hour in any zone is
-- a sum over bins.  The bins are computed by the same definitions, from the
-- call rows, by sb_kpi_bins: never by deltas, so they cannot drift.
--
-- Maintenance: statement triggers on queue_call, call_disposition and
-- callback_request mark the bins a change touches as dirty (kpi_dirty), in the
-- writer's own transaction (the listener's batches, the reconciler's
-- corrections, the panel's dispositions): one small insert per statement.
-- sb_kpi_refresh recomputes the dirty bins, contiguous runs at a time; the
-- figures function runs it first, so a reader always sees the rows as they are.
--
-- The thresholds S (short abandon) and T (service level) are the site's
-- (kpi_agg_config, the wall board's and the reports' defaults); a question
-- with other thresholds, or a range that does not start and end on a
-- 15-minute boundary, is answered from the call rows (sb_kpi_queue), as before.

CREATE TABLE kpi_agg_config (
    id      boolean PRIMARY KEY DEFAULT true CHECK (id),
    short_s integer NOT NULL DEFAULT 5 CHECK (short_s BETWEEN 0 AND 3600),
    sl_s    integer NOT NULL DEFAULT 20 CHECK (sl_s BETWEEN 1 AND 3600)
);
INSERT INTO kpi_agg_config DEFAULT VALUES;

CREATE TABLE kpi_bin (
    bin            timestamptz NOT NULL,  -- start of a 15-minute UTC bin
    queue          text NOT NULL,         -- a queue, or '(all)'
    offered        bigint NOT NULL,
    answered       bigint NOT NULL,
    abandoned      bigint NOT NULL,
    short_ab       bigint NOT NULL,
    ab_within_t    bigint NOT NULL,
    timeouts       bigint NOT NULL,
    overflowed     bigint NOT NULL,
    in_progress    bigint NOT NULL,
    answered_sl    bigint NOT NULL,
    wait_ans_n     bigint NOT NULL,   -- answered calls with a wait (ASA's divisor)
    wait_ans_sum   numeric NOT NULL,
    wait_end_n     bigint NOT NULL,   -- ended calls with a wait (average wait)
    wait_end_sum   numeric NOT NULL,
    max_wait       numeric,
    handle_n       bigint NOT NULL,   -- answered calls with a talk time (AHT)
    handle_sum     numeric NOT NULL,  -- their talk, plus the measured wrap-up
    handle_nodisp  bigint NOT NULL,   -- of those, calls with no disposition (+ W each)
    callbacks      bigint NOT NULL,
    max_waiting    bigint NOT NULL,
    PRIMARY KEY (bin, queue)
);

CREATE TABLE kpi_dirty (bin timestamptz PRIMARY KEY);

-- each caller's wait, entry to end (open while waiting), as sb_call_fact and
-- the waiting sweep use it: a bin's recompute finds who waited during it in
-- one probe, however long ago they came (the upper bound is never below the
-- lower one, so a row whose clocks disagree cannot be refused)
CREATE FUNCTION sb_wait_span(entered timestamptz, wait_end timestamptz) RETURNS tstzrange
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT tstzrange(entered, CASE WHEN wait_end IS NOT NULL  -- open: no end yet
                                   THEN greatest(entered, wait_end) END, '[]')
$$;
CREATE INDEX queue_call_wait_span_idx ON queue_call
    USING gist (sb_wait_span(entered_at, coalesce(answered_at, left_at, ended_at)))
    WHERE outcome IS DISTINCT FROM 'joined-empty';

-- a callback request's bin (and the figures' callbacks) by when it was made
CREATE INDEX callback_request_at_idx ON callback_request (requested_at);

CREATE FUNCTION sb_kpi_binof(t timestamptz) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT date_bin('15 minutes', t, timestamptz '2000-01-01 00:00:00+00')
$$;

-- The bins of [p_from, p_to) (15-minute aligned), computed from the call rows
-- by the definitions of sb_kpi_queue (0014): the same filters, the same
-- outcome classes, the same overflow and callback rules, the same sweep of
-- callers waiting, started from the number still waiting at p_from.
CREATE FUNCTION sb_kpi_bins(p_from timestamptz, p_to timestamptz, p_short_s integer,
                            p_sl_s integer)
RETURNS SETOF kpi_bin LANGUAGE sql STABLE AS $$
WITH f AS (
    SELECT sb_kpi_binof(entered_at) AS b, x.*,
           outcome IN ('answered', 'transferred') AS is_answered,
           outcome IN ('timeout', 'left-empty') AND EXISTS (
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
           count(wait_s) FILTER (WHERE is_answered) AS wait_ans_n,
           coalesce(sum(wait_s) FILTER (WHERE is_answered), 0) AS wait_ans_sum,
           count(wait_s) FILTER (WHERE outcome IS NOT NULL) AS wait_end_n,
           coalesce(sum(wait_s) FILTER (WHERE outcome IS NOT NULL), 0) AS wait_end_sum,
           max(wait_s) AS max_wait,
           count(*) FILTER (WHERE is_answered AND talk_s IS NOT NULL) AS handle_n,
           coalesce(sum(talk_s + coalesce(wrapup_s, 0))
                    FILTER (WHERE is_answered AND talk_s IS NOT NULL), 0) AS handle_sum,
           count(*) FILTER (WHERE is_answered AND talk_s IS NOT NULL
                              AND wrapup_s IS NULL) AS handle_nodisp
      FROM f GROUP BY GROUPING SETS ((b, f.queue), (b))
), cb AS (
    SELECT sb_kpi_binof(r.requested_at) AS b, coalesce(q.queue, '(none)') AS q
      FROM callback_request r
      LEFT JOIN LATERAL (SELECT c.queue FROM queue_call c WHERE c.uniqueid = r.uniqueid
                          ORDER BY c.entered_at DESC LIMIT 1) q ON true
     WHERE r.requested_at >= p_from AND r.requested_at < p_to
), cbs AS (
    SELECT b, coalesce(cb.q, '(all)') AS q, count(*) AS n
      FROM cb GROUP BY GROUPING SETS ((b, cb.q), (b))
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

-- Recompute the dirty bins, a contiguous run at a time; returns how many bins.
-- Concurrent callers take turns (an advisory lock).  Writers mark a bin with
-- an upsert that locks its row until they commit; the refresh locks the dirty
-- rows first (in bin order, as writers do: no deadlock), so it never takes a
-- bin away from a writer whose rows it cannot see yet: it waits for it.
CREATE FUNCTION sb_kpi_refresh() RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    cfg  kpi_agg_config;
    r    record;
    done integer := 0;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('sb_kpi_refresh'));
    SELECT * INTO cfg FROM kpi_agg_config;
    PERFORM 1 FROM kpi_dirty ORDER BY bin FOR UPDATE;
    FOR r IN
        WITH d AS (DELETE FROM kpi_dirty RETURNING bin),
        g AS (SELECT bin, bin - (row_number() OVER (ORDER BY bin))
                                * interval '15 minutes' AS grp FROM d)
        SELECT min(bin) AS lo, max(bin) + interval '15 minutes' AS hi, count(*) AS n
          FROM g GROUP BY grp
    LOOP
        DELETE FROM kpi_bin WHERE bin >= r.lo AND bin < r.hi;
        INSERT INTO kpi_bin SELECT * FROM sb_kpi_bins(r.lo, r.hi, cfg.short_s, cfg.sl_s);
        done := done + r.n;
    END LOOP;
    RETURN done;
END $$;

-- Every bin of [p_from, p_to) from scratch (first install, a change of the
-- thresholds, a restore): marks them dirty and refreshes.
CREATE FUNCTION sb_kpi_rebuild(p_from timestamptz, p_to timestamptz) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    INSERT INTO kpi_dirty
    SELECT generate_series(sb_kpi_binof(p_from), p_to - interval '1 microsecond',
                           interval '15 minutes')
    ON CONFLICT (bin) DO UPDATE SET bin = EXCLUDED.bin;
    RETURN sb_kpi_refresh();
END $$;

-- --- what marks bins dirty -----------------------------------------------------------
-- A queue_call row's bins: from its entry to the end of its wait (or now, while it
-- waits: it counts as waiting in each), and the entry bins of the call's other
-- rows (their overflow) and its callback requests (their last queue).
CREATE FUNCTION sb_kpi_mark_calls(p_rows queue_call[]) RETURNS void
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

-- A disposition (the call's wrap-up, in AHT) or a callback request: the entry
-- bins of the call's queue rows, and the request's own bin.
CREATE FUNCTION sb_kpi_mark_uniqueids(p_uniqueids text[], p_times timestamptz[])
RETURNS void LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    INSERT INTO kpi_dirty
    SELECT b FROM (
        SELECT sb_kpi_binof(c.entered_at) AS b FROM queue_call c
         WHERE c.uniqueid = ANY (p_uniqueids)
        UNION
        SELECT sb_kpi_binof(t) FROM unnest(p_times) t WHERE t IS NOT NULL) x
     ORDER BY b
    ON CONFLICT (bin) DO UPDATE SET bin = EXCLUDED.bin
$$;

-- The trigger functions: the statement's rows, whichever the event (a
-- transition table exists only for its own event).
CREATE FUNCTION sb_kpi_dirty_calls() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM sb_kpi_mark_calls(ARRAY(SELECT n::queue_call FROM new_rows n));
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM sb_kpi_mark_calls(ARRAY(SELECT o::queue_call FROM old_rows o));
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION sb_kpi_dirty_dispositions() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM sb_kpi_mark_uniqueids(ARRAY(SELECT uniqueid FROM new_rows), '{}');
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM sb_kpi_mark_uniqueids(ARRAY(SELECT uniqueid FROM old_rows), '{}');
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION sb_kpi_dirty_callbacks() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM sb_kpi_mark_uniqueids(ARRAY(SELECT uniqueid FROM new_rows),
                                      ARRAY(SELECT requested_at FROM new_rows));
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM sb_kpi_mark_uniqueids(ARRAY(SELECT uniqueid FROM old_rows),
                                      ARRAY(SELECT requested_at FROM old_rows));
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER queue_call_kpi_ins AFTER INSERT ON queue_call
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION sb_kpi_dirty_calls();
CREATE TRIGGER queue_call_kpi_upd AFTER UPDATE ON queue_call
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sb_kpi_dirty_calls();
CREATE TRIGGER queue_call_kpi_del AFTER DELETE ON queue_call
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION sb_kpi_dirty_calls();
CREATE TRIGGER call_disposition_kpi_ins AFTER INSERT ON call_disposition
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sb_kpi_dirty_dispositions();
CREATE TRIGGER call_disposition_kpi_upd AFTER UPDATE ON call_disposition
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sb_kpi_dirty_dispositions();
CREATE TRIGGER call_disposition_kpi_del AFTER DELETE ON call_disposition
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sb_kpi_dirty_dispositions();
CREATE TRIGGER callback_request_kpi_ins AFTER INSERT ON callback_request
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sb_kpi_dirty_callbacks();
CREATE TRIGGER callback_request_kpi_upd AFTER UPDATE ON callback_request
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sb_kpi_dirty_callbacks();
CREATE TRIGGER callback_request_kpi_del AFTER DELETE ON callback_request
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sb_kpi_dirty_callbacks();

-- --- the figures -----------------------------------------------------------------------
-- sb_kpi_queue's answer (same columns, same rows, same rounding), from the bins
-- when the range is 15-minute aligned and the thresholds are the site's; else
-- from the call rows.  Refreshes the dirty bins first.
CREATE FUNCTION sb_kpi_figures(
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

REVOKE ALL ON kpi_agg_config, kpi_bin, kpi_dirty FROM PUBLIC;
REVOKE ALL ON FUNCTION sb_kpi_refresh(), sb_kpi_rebuild(timestamptz, timestamptz),
    sb_kpi_mark_calls(queue_call[]), sb_kpi_mark_uniqueids(text[], timestamptz[]),
    sb_kpi_figures(timestamptz, timestamptz, text, text, integer, integer, text, integer)
    FROM PUBLIC;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sb_reports') THEN
        EXECUTE 'GRANT EXECUTE ON FUNCTION sb_kpi_refresh(), sb_kpi_figures(timestamptz, '
                'timestamptz, text, text, integer, integer, text, integer) TO sb_reports';
    END IF;
END $$;

-- the bins of the calls already stored
SELECT sb_kpi_rebuild(min(entered_at), now() + interval '15 minutes') FROM queue_call
 HAVING min(entered_at) IS NOT NULL;
