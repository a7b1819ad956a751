-- Caller-ID attestation (STIR/SHAKEN) as a verification signal (issue 14).
--
-- U.S. carriers sign the caller ID of the calls they originate (attestation A:
-- the carrier knows the customer and that the number is theirs; B: knows the
-- customer only; C: a gateway), and the verdict reaches our trunk either as the
-- Identity header, verified by Asterisk's res_stir_shaken, or as the
-- terminating carrier's `verstat` parameter.  The verify handler reads what the
-- dialplan collected (SB_ATTEST), reduces it to (source, attestation, result)
-- and records it here once per call, before any PIN is asked for.
--
-- The rule: a registered line of the agency counts toward `full` only when its
-- caller ID was validated with attestation A.  A site whose carrier sends
-- nothing can say so (verify_policy.unattested_line_counts, `switchboard
-- policy set --unattested-line-counts yes`): then every result but `failed`
-- counts.  A failed validation never counts.
--
-- result:
--   passed        the signature (or the carrier's verdict) says the number is right
--   failed        the signature did not verify, or the carrier says it failed
--   not-validated the call was not validated (unsigned; No-TN-Validation)
--   absent        the site expects a verdict and the call carries none
--   not-provided  the site's carrier provides nothing (CALLER_ID_ATTEST=none)
--   error         it could not be checked (Asterisk's internal or fetch errors,
--                 or what the dialplan passed was unreadable)

CREATE TABLE caller_id_check (
    uniqueid   text PRIMARY KEY,
    checked_at timestamptz NOT NULL DEFAULT now(),
    ani        text NOT NULL,
    source     text NOT NULL CHECK (source IN ('verstat', 'verstat-a', 'identity', 'none')),
    attest     text CHECK (attest IN ('A', 'B', 'C')),
    result     text NOT NULL CHECK (result IN ('passed', 'failed', 'not-validated', 'absent',
                                               'not-provided', 'error')),
    reason     text CHECK (reason ~ '^[A-Za-z0-9_.-]{1,40}$')
);
CREATE INDEX caller_id_check_at_idx ON caller_id_check (checked_at);

ALTER TABLE verify_policy
    ADD COLUMN unattested_line_counts boolean NOT NULL DEFAULT false;

REVOKE ALL ON caller_id_check FROM PUBLIC;
