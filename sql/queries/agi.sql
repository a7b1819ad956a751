-- The AGI service's only statements.  It runs as role sb_agi, which may execute
-- these functions (sql/migrations/0003) and nothing else.

-- name: attempt_begin
-- Its own transaction (committed before any hash can be asked for).
-- $1 uniqueid, $2 channel, $3 ani (E.164 or 'withheld'), $4 agency, $5 officer.
SELECT sb_agi_attempt_begin($1, $2, $3, $4, $5);

-- name: caller_id
-- Once per call, before any PIN: the caller ID's attestation check.
-- $1 uniqueid, $2 ani, $3 source, $4 attestation (A|B|C or NULL), $5 result,
-- $6 reason (the carrier's verstat token or Asterisk's verify_result, or NULL).
SELECT sb_agi_caller_id($1, $2, $3, $4, $5, $6);

-- name: attempt_hash
-- $1 attempt id, $2 uniqueid: the PIN hash, or NULL (check a dummy instead).
SELECT sb_agi_attempt_hash($1, $2);

-- name: attempt_finish
-- $1 attempt id, $2 uniqueid, $3 PIN right, $4 the PIN re-hashed with the current
-- parameters (or NULL).
SELECT sb_agi_attempt_finish($1, $2, $3, $4);

-- name: lookup
-- $1 uniqueid, $2 channel, $3 ani, $4 case number (check digit already checked).
SELECT outcome, case_ref, priority FROM sb_agi_case_lookup($1, $2, $3, $4);

-- name: audit
-- $1 uniqueid, $2 ani, $3 action (verify|lookup), $4 result.
SELECT sb_agi_audit($1, $2, $3, $4);

-- name: whoami
SELECT current_user;

-- name: callback
-- $1 uniqueid, $2 ani (E.164 or 'withheld'), $3 case ref or NULL.
SELECT sb_agi_callback($1, $2, $3);

-- name: oob_begin
SELECT * FROM sb_agi_oob_begin($1);

-- name: oob_confirm
SELECT sb_agi_oob_confirm($1, $2, $3, $4);

-- name: outbound_begin
-- $1 node, $2 uniqueid, $3 purpose (panel|desk-phone), $4 number (E.164), $5
-- this node's outbound legs now (this one included), $6 its cap.
SELECT * FROM sb_agi_outbound_begin($1, $2, $3, $4, $5, $6);

-- name: outbound_end
-- $1 leg id, $2 uniqueid, $3 answered seconds.
SELECT sb_agi_outbound_end($1, $2, $3);

-- name: emergency
-- $1 node, $2 uniqueid, $3 phone, $4 emergency caller ID, $5 place, $6 DIALSTATUS,
-- $7 answered seconds.
SELECT sb_agi_emergency($1, $2, $3, $4, $5, $6, $7);
