-- Derived from ami_event by the listener, in the same transaction as the rows.

-- One row per queued call (a caller channel entering one queue once).
-- outcome is NULL while the call is in progress, then one of:
--   answered      AgentConnect seen (hold_s/ring_s from it, talk_s from AgentComplete)
--   transferred   answered, and AgentComplete said Reason: transfer
--   abandoned     QueueCallerAbandon after the caller hung up (HangupRequest first)
--   timeout       QueueCallerAbandon with the caller still up (Queue() timeout),
--                 or the dialplan's SBQueueResult UserEvent said QUEUESTATUS=TIMEOUT
--   left-empty    left the queue unanswered because it had no members left
--   joined-empty  refused by an empty queue (dialplan UserEvent, no Queue events)
--   unknown       ended while the listener was not connected (gap_key says which gap;
--                 ended_at is then the end of that gap: the call was gone by then)
CREATE TABLE queue_call (
    call_id           bytea PRIMARY KEY,
    node              text        NOT NULL,
    uniqueid          text        NOT NULL,
    linkedid          text,
    queue             text        NOT NULL,
    caller_num        text,
    caller_name       text,
    entered_at        timestamptz NOT NULL,
    position          integer,
    outcome           text CHECK (outcome IN ('answered', 'transferred', 'abandoned',
                          'timeout', 'left-empty', 'joined-empty', 'unknown')),
    member_interface  text,
    member_name       text,
    hold_s            integer,
    ring_s            integer,
    talk_s            integer,
    rna_count         integer     NOT NULL DEFAULT 0,
    answered_at       timestamptz,
    left_at           timestamptz,
    caller_hangup_at  timestamptz,
    ended_at          timestamptz,
    complete_reason   text,
    gap_key           bytea REFERENCES listener_gap (gap_key),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX queue_call_entered_idx ON queue_call (entered_at, queue);
CREATE INDEX queue_call_uniqueid_idx ON queue_call (node, uniqueid);
CREATE INDEX queue_call_open_idx ON queue_call (node) WHERE ended_at IS NULL;

-- Agent (queue member) state intervals, per queue and interface.
-- state: available | ringing | on_call | paused | unavailable | unknown.
-- A member removed from a queue has no open interval.  ended_at NULL = current.
CREATE TABLE agent_state (
    node         text        NOT NULL,
    queue        text        NOT NULL,
    interface    text        NOT NULL,
    member_name  text,
    state        text        NOT NULL CHECK (state IN ('available', 'ringing', 'on_call',
                                 'paused', 'unavailable', 'unknown')),
    reason       text,
    started_at   timestamptz NOT NULL,
    ended_at     timestamptz,
    start_key    bytea       NOT NULL,
    start_seq    bigint      NOT NULL,  -- spool order of the starting event (ties)
    PRIMARY KEY (node, queue, interface, start_key),
    CHECK (ended_at IS NULL OR ended_at >= started_at)
);
CREATE INDEX agent_state_time_idx ON agent_state (started_at);
CREATE INDEX agent_state_open_idx ON agent_state (node) WHERE ended_at IS NULL;
