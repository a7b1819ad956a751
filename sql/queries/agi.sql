-- The AGI service's only statements.  It runs as role sb_agi, which may execute
-- these functions (sql/migrations/0003) and nothing else.

-- name: verify_begin
-- $1 ani (E.164 or 'withheld'), $2 agency code, $3 officer number.
SELECT status, officer_id, pin_hash, line_ok FROM sb_agi_verify_begin($1, $2, $3);

-- name: verify_finish
-- $1 uniqueid, $2 ani, $3 agency, $4 officer, $5 status from verify_begin,
-- $6 officer_id, $7 PIN right, $8 line_ok, $9-$12 lockout and throttle limits.
SELECT sb_agi_verify_finish($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12);

-- name: lookup
-- $1 uniqueid, $2 ani, $3 case number (check digit already checked).
SELECT outcome, case_ref, priority FROM sb_agi_lookup($1, $2, $3);

-- name: audit
-- $1 uniqueid, $2 ani, $3 action (verify|lookup), $4 result.
SELECT sb_agi_audit($1, $2, $3, $4);

-- name: whoami
SELECT current_user;

-- name: callback
-- $1 uniqueid, $2 ani (E.164 or 'withheld'), $3 case ref or NULL.
SELECT sb_agi_callback($1, $2, $3);
