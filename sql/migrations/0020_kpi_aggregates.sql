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
CREATE INDEX queue_call_wait_span_idx ON queue_call
    USING gist (sb_wait_span(entered_at, coalesce(answered_at, left_at, ended_at)))
    WHERE outcome IS DISTINCT FROM 'joined-empty';

-- a callback request's bin (and the figures' callbacks) by when it was made
CREATE INDEX callback_request_at_idx ON callback_request (requested_at);

REVOKE ALL ON kpi_agg_config, kpi_bin, kpi_dirty FROM PUBLIC;

-- the bins of the calls already stored
SELECT sb_kpi_rebuild(min(entered_at), now() + interval '15 minutes') FROM queue_call
 HAVING min(entered_at) IS NOT NULL;
