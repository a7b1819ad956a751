-- Queries of the recordings (switchboard/admin/recordings.py, switchboard/console/recordings_cli.py;
-- docs/recordings.md).  Each block starts with "-- name: NAME"; parameters are
-- $n, never string-built.  The shipper runs as sb_recorder (stored); the purge
-- as the owner (ops commands) or sb_panel (the panel's daily housekeeping),
-- both with the audit key; the rest as the owner.

-- name: stored
-- A sealed file in the store: indexed, its digest into the call's audit chain
SELECT sb_recorder_stored($1, $2, $3, $4, $5, $6, $7, $8);

-- name: kept_by_hold
SELECT sb_recordings_kept_by_hold($1);

-- name: expired
SELECT * FROM sb_recordings_expired($1, $2);

-- name: purged
SELECT sb_recording_purged($1, $2, $3);

-- name: hold
INSERT INTO legal_hold (uniqueid, reason, held_by) VALUES ($1, $2, $3)
ON CONFLICT (uniqueid) DO NOTHING RETURNING true;

-- name: release
DELETE FROM legal_hold WHERE uniqueid = $1 RETURNING true;

-- name: hold_audit
-- $3 'on' or 'off', $4 the reason (on)
SELECT sb_audit_append($1, $2, NULL, NULL, NULL, 'legal-hold', $3, $4);

-- name: kept
-- Every kept recording, and whether its digest is the one its audit row holds
SELECT r.recording_id, r.uniqueid, r.store_key, r.sha256,
       EXISTS (SELECT 1 FROM audit_log l WHERE l.uniqueid = r.uniqueid
                  AND l.action = 'recording-stored' AND l.result = 'ok'
                  AND l.detail LIKE encode(r.sha256, 'hex') || ' %') AS audited
  FROM recording r WHERE r.purged_at IS NULL ORDER BY r.recording_id;

-- name: newest
SELECT r.recording_id, r.uniqueid, r.node, r.started_at, r.seconds, r.bytes,
       h.uniqueid IS NOT NULL AS held
  FROM recording r LEFT JOIN legal_hold h USING (uniqueid)
 WHERE r.purged_at IS NULL ORDER BY r.started_at DESC LIMIT 50;
