-- Calls cut by an Asterisk shutdown or restart, and the queue_log reconciler.
--
-- outcome 'cut': Asterisk ended the call because it was shutting down or
-- restarting (SoftHangupRequest with Cause 4 = AST_SOFTHANGUP_SHUTDOWN, or the
-- Shutdown event while the call was open).  answered_at says whether an agent
-- had answered it; complete_reason says 'shutdown' or 'restart'.  queue_log
-- records these calls as ordinary ABANDON / COMPLETEAGENT: the reconciler
-- leaves a 'cut' row's outcome alone.  sql/kpi.md says how the figures count it.
ALTER TABLE queue_call DROP CONSTRAINT queue_call_outcome_check;
ALTER TABLE queue_call ADD CONSTRAINT queue_call_outcome_check
    CHECK (outcome IN ('answered', 'transferred', 'abandoned', 'timeout', 'left-empty',
                       'joined-empty', 'unknown', 'cut'));

-- Where a transferred call went (queue_log BLINDTRANSFER: extension@context;
-- ATTENDEDTRANSFER: the method and its target), and when the reconciler last
-- changed the row to agree with queue_log (NULL: never).
ALTER TABLE queue_call ADD COLUMN transfer_target text;
ALTER TABLE queue_call ADD COLUMN reconciled_at timestamptz;
-- A gap whose calls the reconciler has made agree with queue_log (NULL: not
-- yet, or no queue_log): reports then trust the figures across it.
ALTER TABLE listener_gap ADD COLUMN reconciled_at timestamptz;

-- The reconciler finds calls by what queue_log knows of them.
CREATE INDEX queue_call_node_entered_idx ON queue_call (node, entered_at);

-- How far the listener's scheduled reconciler has read each node's queue_log
-- (by inode and byte offset, so a growing file is read once and a rotated one
-- is noticed).
CREATE TABLE queue_log_position (
    node        text PRIMARY KEY,
    path        text        NOT NULL,
    inode       bigint      NOT NULL,
    byte_offset bigint      NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sb_listener') THEN
        EXECUTE 'GRANT SELECT, INSERT, UPDATE ON queue_log_position TO sb_listener';
    END IF;
END $$;
