-- Ops commands (switchboard agency|line|officer|case|audit), run as the database
-- owner.  Every change also appends an audit row (actor 'ops:<login>').

-- name: agency_add
INSERT INTO agency (code, name) VALUES ($1, $2) RETURNING agency_id;

-- name: agency_suspend
UPDATE agency SET suspended_at = coalesce(suspended_at, now()) WHERE code = $1
RETURNING agency_id;

-- name: agency_list
SELECT a.code, a.name, a.suspended_at IS NOT NULL AS suspended,
       (SELECT count(*) FROM agency_line l WHERE l.agency_id = a.agency_id) AS lines,
       (SELECT count(*) FROM officer o WHERE o.agency_id = a.agency_id) AS officers
FROM agency a ORDER BY a.code;

-- name: line_add
INSERT INTO agency_line (e164, agency_id, label)
SELECT $2, agency_id, $3 FROM agency WHERE code = $1 RETURNING e164;

-- name: line_remove
DELETE FROM agency_line WHERE e164 = $1 RETURNING e164;

-- name: officer_add
INSERT INTO officer (agency_id, number, name)
SELECT agency_id, $2, $3 FROM agency WHERE code = $1 RETURNING officer_id;

-- name: officer_set_pin
-- A new PIN also clears the failure counter and any lock.
UPDATE officer o SET pin_hash = $3, pin_set_at = now(), failed_count = 0, locked_until = NULL
FROM agency a WHERE a.agency_id = o.agency_id AND a.code = $1 AND o.number = $2
RETURNING o.officer_id;

-- name: officer_unlock
UPDATE officer o SET failed_count = 0, locked_until = NULL
FROM agency a WHERE a.agency_id = o.agency_id AND a.code = $1 AND o.number = $2
RETURNING o.officer_id;

-- name: officer_status
SELECT o.name, o.pin_hash IS NOT NULL AS has_pin, o.failed_count, o.locked_until,
       o.suspended_at
FROM officer o JOIN agency a USING (agency_id) WHERE a.code = $1 AND o.number = $2;

-- name: case_add
-- A case that exists already is left alone (NULL): changes go through case_set.
INSERT INTO case_record (case_number, priority, office) VALUES ($1, $2, $3)
ON CONFLICT (case_number) DO NOTHING
RETURNING ref;

-- name: case_set
UPDATE case_record SET priority = coalesce($2, priority), status = coalesce($3, status),
                       office = coalesce($4, office)
WHERE case_number = $1
RETURNING ref;

-- name: audit_append
SELECT sb_audit_append($1, NULL, NULL, $2, $3, $4, $5, $6);

-- name: audit_by_call
SELECT chain, seq, at, actor, uniqueid, ani, agency, officer, action, result, detail
FROM audit_log WHERE uniqueid = $1 ORDER BY at DESC, seq DESC LIMIT $2;

-- name: audit_by_officer
SELECT chain, seq, at, actor, uniqueid, ani, agency, officer, action, result, detail
FROM audit_log WHERE agency = $1 AND officer = $2 ORDER BY at DESC, seq DESC LIMIT $3;

-- name: audit_recent
SELECT chain, seq, at, actor, uniqueid, ani, agency, officer, action, result, detail
FROM audit_log ORDER BY at DESC, seq DESC LIMIT $1;

-- name: audit_chain
-- Chain $1 from seq $2 on, with each row's digest recomputed.
SELECT seq, prev_hash, hash,
       sb_audit_digest(prev_hash, chain, seq, at, actor, uniqueid, ani, agency, officer,
                       action, result, detail) AS expected
FROM audit_log WHERE chain = $1 AND seq > $2 ORDER BY seq LIMIT $3;

-- name: audit_heads
SELECT chain, seq, hash, sb_audit_genesis(chain) AS genesis FROM audit_head ORDER BY chain;

-- name: audit_orphans
-- Rows in a chain audit_head does not know (there are none unless someone wrote
-- them by hand).
SELECT count(*) FROM audit_log WHERE chain NOT IN (SELECT chain FROM audit_head);

-- name: audit_outcomes
-- Audit rows by action and result since $1 (the demo's summary).
SELECT action, result, count(*) AS n FROM audit_log WHERE at >= $1
GROUP BY action, result ORDER BY action, result;

-- name: agent_add
INSERT INTO agent (login, name, interface, role) VALUES ($1, $2, $3, $4)
RETURNING agent_id;

-- name: agent_set_password
-- A new password also re-enables a disabled account.
UPDATE agent SET password_hash = $2, password_set_at = now(), disabled_at = NULL
WHERE login = $1 RETURNING agent_id;

-- name: agent_disable
UPDATE agent SET disabled_at = now() WHERE login = $1 AND disabled_at IS NULL
RETURNING agent_id;

-- name: agent_list
SELECT login, name, interface, role, password_hash IS NOT NULL AS has_password,
       disabled_at IS NOT NULL AS disabled
FROM agent ORDER BY login;

-- name: disposition_set
INSERT INTO disposition_code (code, label, sort) VALUES ($1, $2, $3)
ON CONFLICT (code) DO UPDATE SET label = EXCLUDED.label, sort = EXCLUDED.sort,
                                 retired_at = NULL
RETURNING code;

-- name: disposition_retire
UPDATE disposition_code SET retired_at = now() WHERE code = $1 AND retired_at IS NULL
RETURNING code;

-- name: disposition_list
SELECT code, label, retired_at IS NOT NULL AS retired FROM disposition_code
ORDER BY retired_at IS NOT NULL, sort, code;

-- name: policy_show
SELECT max_failures, lock_minutes, ani_max_failures, ani_block_minutes,
       unattested_line_counts, updated_at FROM verify_policy;

-- name: policy_set_unattested
-- $1: does a registered line count toward `full` without an A attestation?
UPDATE verify_policy SET unattested_line_counts = $1, updated_at = now()
RETURNING unattested_line_counts;

-- name: outbound_policy_show
SELECT minutes_per_hour, call_max_minutes FROM outbound_policy;

-- name: outbound_policy_set
-- $1: the line's outbound minutes per hour, $2: the most one call may get (NULL:
-- unchanged); toll fraud's bound (sql/migrations/0024)
UPDATE outbound_policy SET minutes_per_hour = coalesce($1, minutes_per_hour),
                           call_max_minutes = coalesce($2, call_max_minutes)
RETURNING minutes_per_hour, call_max_minutes;

-- name: event_partitions
-- The partitions of ami_event (one per UTC day, and the default one).
SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'ami_event'::regclass;

-- name: event_partition_rows
SELECT sb_event_partition_rows($1);

-- name: event_partition_drop
-- in a transaction whose lock_timeout bounds the wait (set_config(..., true))
SELECT set_config('lock_timeout', $2, true), sb_event_partition_drop($1);

-- name: kpi_rebuild
-- The figures' bins of [$1, $2) from the call rows (migration 0020), in the
-- caller's transaction: `switchboard db rebuild-figures` runs it a day at a time.
SELECT sb_kpi_rebuild($1, $2);

-- name: kpi_calls_span
SELECT min(entered_at) AS first, max(entered_at) AS last FROM queue_call;
