-- Callback requests: a caller no agent could take leaves their number (and the
-- case reference, when the lookup found one) for an agent to call back.  A row,
-- not a voicemail.  Written by the AGI handler `callback` through
-- sb_agi_callback (role sb_agi), which also appends an audit row.
CREATE TABLE callback_request (
    request_id   bigserial PRIMARY KEY,
    requested_at timestamptz NOT NULL DEFAULT now(),
    uniqueid     text NOT NULL UNIQUE,
    ani          text NOT NULL CHECK (ani ~ '^\+[1-9][0-9]{6,14}$'),
    case_ref     text CHECK (case_ref ~ '^C[0-9A-F]{12}$'),
    status       text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'done', 'failed')),
    done_at      timestamptz
);
CREATE INDEX callback_request_open_idx ON callback_request (requested_at)
    WHERE status = 'open';

REVOKE ALL ON callback_request FROM PUBLIC;
