-- The reports page's mix at 100x (issue 24): a 31-day page must answer within
-- 2 s, and counting a month of verifications, caller-ID checks, dispositions,
-- callback requests and transfers row by row (20 million calls at 100x) does
-- not.  As the figures' kpi_bin (0020), the mix is kept per 15-minute UTC bin
-- and part, computed by its definitions (sb_mix_rows) and never by deltas:
--
--   report_mix_bin    (bin, part, kind) -> n
--   report_mix_dirty  (bin, part) marked by statement triggers in the writer's
--                     transaction (sql/functions/sb_mix_dirty_*.sql) and
--                     recomputed by sb_mix_refresh, which sb_report_mix runs first.
--
-- Dirty marks are per part, so a late change of one part (a callback request
-- closed a month later) never recomputes another.  The AGI's housekeeping
-- deletes verification attempts and caller-ID checks after 30 days; those
-- deletions mark nothing, so a month's or a year's mix keeps what the line saw
-- (the bins outlive the rows, as the figures' bins do).

CREATE TABLE report_mix_bin (
    bin   timestamptz NOT NULL,   -- start of a 15-minute UTC bin
    part  text NOT NULL CHECK (part IN ('verification', 'caller_id', 'callbacks',
                                        'dispositions', 'transfers')),
    kind  text NOT NULL,
    n     bigint NOT NULL CHECK (n > 0),
    PRIMARY KEY (bin, part, kind)
);

CREATE TABLE report_mix_dirty (
    bin   timestamptz NOT NULL,
    part  text NOT NULL,
    PRIMARY KEY (bin, part)
);

REVOKE ALL ON report_mix_bin, report_mix_dirty FROM PUBLIC;

-- what is there already: every bin of every part, computed at the first page
-- (or now: SELECT sb_mix_refresh())
INSERT INTO report_mix_dirty (bin, part)
SELECT DISTINCT sb_kpi_binof(finished_at), 'verification' FROM verify_attempt
 WHERE outcome IS NOT NULL AND finished_at IS NOT NULL
UNION SELECT DISTINCT sb_kpi_binof(checked_at), 'caller_id' FROM caller_id_check
UNION SELECT DISTINCT sb_kpi_binof(requested_at), 'callbacks' FROM callback_request
UNION SELECT DISTINCT sb_kpi_binof(saved_at), 'dispositions' FROM call_disposition
UNION SELECT DISTINCT sb_kpi_binof(entered_at), 'transfers' FROM queue_call
 WHERE outcome = 'transferred';
