-- Queries of the agent panel (switchboard/web/panel.py), run as sb_panel: each calls one
-- sb_panel_* function of migration 0012, which decides and audits.  Each block
-- starts with "-- name: NAME"; parameters are $n, never string-built.

-- name: login_hash
SELECT agent_id, password_hash FROM sb_panel_login_hash($1);

-- name: login
SELECT sb_panel_login($1, $2, $3, $4, $5) AS outcome;

-- name: session
SELECT * FROM sb_panel_session($1);

-- name: logout
SELECT sb_panel_logout($1);

-- name: calls
SELECT * FROM sb_panel_calls($1);

-- name: case
SELECT * FROM sb_panel_case($1, $2);

-- name: case_lookup
SELECT * FROM sb_panel_case_lookup($1, $2, $3);

-- name: agencies
SELECT * FROM sb_panel_agencies();

-- name: dispositions
SELECT * FROM sb_panel_dispositions();

-- name: oob_begin
SELECT * FROM sb_panel_oob_begin($1, $2, $3);

-- name: oob_result
SELECT sb_panel_oob_result($1, $2, $3);

-- name: oob_confirm
SELECT sb_panel_oob_confirm($1, $2, $3) AS outcome;

-- name: dispose
SELECT * FROM sb_panel_dispose($1, $2, $3, $4);

-- name: callbacks
SELECT * FROM sb_panel_callbacks($1, $2, $3);

-- name: streams
-- Every open panel page at once (one query per change, whatever the number of
-- pages): for each session token, its agent (NULL: the session ended) and the
-- calls that agent may see now (none: one row with a NULL uniqueid).
SELECT t.h AS stream_token, s.agent_id AS stream_agent, c.*
  FROM unnest($1::bytea[]) AS t(h)
  LEFT JOIN LATERAL sb_panel_session(t.h) s ON true
  LEFT JOIN LATERAL sb_panel_calls(s.agent_id) c ON s.agent_id IS NOT NULL;

-- name: callback_claim
SELECT sb_panel_callback_claim($1, $2) AS outcome;

-- name: callback_dial
SELECT * FROM sb_panel_callback_dial($1, $2);

-- name: callback_close
SELECT sb_panel_callback_close($1, $2, $3, $4) AS outcome;

-- name: presence
-- The agent logs in, out, pauses or resumes from the panel: agent_presence,
-- which every node's listener applies (sql/migrations/0025_nodes.sql).
SELECT outcome, why FROM sb_panel_presence($1, $2, $3);

-- name: presence_state
SELECT queue, logged_in, paused, reason, at, node FROM sb_panel_presence_state($1);

-- name: recordings
-- Supervisors only (sql/migrations/0026_supervisor.sql): recorded calls, newest
-- first, or one call's
SELECT * FROM sb_panel_recordings($1, $2, $3);

-- name: recording_ticket
SELECT sb_panel_recording_ticket($1, $2, $3) AS outcome;

-- name: recording_play
SELECT * FROM sb_panel_recording_play($1, $2);

-- name: recording_failed
SELECT sb_panel_recording_failed($1, $2, $3);

-- name: spy_begin
SELECT * FROM sb_panel_spy_begin($1, $2, $3);

-- name: spy_state
SELECT sb_panel_spy_state($1, $2);

-- name: spy_orphans
SELECT sb_panel_spy_orphans() AS n;

-- name: transfer
SELECT * FROM sb_panel_transfer($1, $2, $3);
