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

-- What the audit rows of a call's verification say about its caller ID.
CREATE FUNCTION sb_caller_id_detail(p_uniqueid text) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT coalesce((SELECT format('caller-id %s attest=%s source=%s%s', c.result,
                                   coalesce(c.attest, '-'), c.source,
                                   coalesce(' reason=' || c.reason, ''))
                       FROM caller_id_check c WHERE c.uniqueid = p_uniqueid),
                    'caller-id unknown')
$$;

-- Does the registered-line factor count for this call's caller ID?
CREATE FUNCTION sb_caller_id_counts(p_uniqueid text, p_ani text) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT CASE
        WHEN c.uniqueid IS NULL OR c.ani IS DISTINCT FROM p_ani THEN p.unattested_line_counts
        WHEN c.result = 'failed' THEN false
        WHEN c.result = 'passed' AND c.attest = 'A' THEN true
        ELSE p.unattested_line_counts END
      FROM verify_policy p
      LEFT JOIN caller_id_check c ON c.uniqueid = p_uniqueid
$$;

-- The verify handler records a call's caller-ID evidence once (a second
-- transport re-running the step finds it there) with an audit row.
CREATE FUNCTION sb_agi_caller_id(p_uniqueid text, p_ani text, p_source text, p_attest text,
                                 p_result text, p_reason text)
RETURNS text LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_result text;
BEGIN
    p_uniqueid := left(p_uniqueid, 150); p_ani := left(p_ani, 40);
    IF p_reason IS NOT NULL AND p_reason !~ '^[A-Za-z0-9_.-]{1,40}$' THEN
        p_reason := NULL;
    END IF;
    INSERT INTO caller_id_check (uniqueid, ani, source, attest, result, reason)
    VALUES (p_uniqueid, p_ani, p_source, p_attest, p_result, p_reason)
    ON CONFLICT (uniqueid) DO NOTHING
    RETURNING result INTO v_result;
    IF v_result IS NULL THEN
        SELECT result INTO v_result FROM caller_id_check WHERE uniqueid = p_uniqueid;
        RETURN v_result;
    END IF;
    PERFORM sb_audit_append('agi', p_uniqueid, p_ani, NULL, NULL, 'caller-id', p_result,
                            sb_caller_id_detail(p_uniqueid));
    RETURN v_result;
END $$;

-- The finish of an attempt (0008) with the caller-ID rule, and every row it
-- writes carries the call's caller-ID evidence.
CREATE OR REPLACE FUNCTION sb_agi_attempt_finish(p_attempt_id bigint, p_uniqueid text,
                                                 p_pin_ok boolean, p_new_hash text DEFAULT NULL)
RETURNS text LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    pol       verify_policy;
    a         verify_attempt;
    v_outcome text;
    v_ani     ani_throttle;
    v_detail  text;
BEGIN
    SELECT * INTO pol FROM verify_policy;
    SELECT * INTO a FROM verify_attempt WHERE attempt_id = p_attempt_id FOR UPDATE;
    IF NOT FOUND OR a.uniqueid IS DISTINCT FROM p_uniqueid OR a.finished_at IS NOT NULL
       OR a.started_at < now() - make_interval(secs => pol.attempt_ttl_s) THEN
        PERFORM sb_audit_append('agi', left(p_uniqueid, 150), NULL, NULL, NULL, 'verify',
                                'refused', 'finish without a begun attempt');
        RETURN 'failed';
    END IF;
    v_detail := sb_caller_id_detail(a.uniqueid);

    IF a.status = 'ok' AND p_pin_ok AND a.hash_given_at IS NOT NULL
       AND EXISTS (SELECT 1 FROM officer WHERE officer_id = a.officer_id
                      AND (locked_until IS NULL OR locked_until <= now()))
       AND NOT EXISTS (SELECT 1 FROM ani_throttle WHERE ani = a.ani
                          AND blocked_until > now()) THEN
        UPDATE officer
           SET failed_count = (SELECT count(*) FROM verify_attempt v
                                WHERE v.officer_id = a.officer_id AND v.status = 'ok'
                                  AND v.finished_at IS NULL AND v.attempt_id <> a.attempt_id
                                  AND v.started_at > now() - make_interval(
                                      secs => pol.attempt_ttl_s)),
               locked_until = NULL,
               pin_hash = CASE WHEN p_new_hash LIKE '$argon2id$%' AND length(p_new_hash) < 300
                               THEN p_new_hash ELSE pin_hash END,
               pin_set_at = CASE WHEN p_new_hash LIKE '$argon2id$%' AND length(p_new_hash) < 300
                                 THEN now() ELSE pin_set_at END
         WHERE officer_id = a.officer_id;
        -- the registered line counts only with an attested caller ID (above)
        v_outcome := CASE WHEN a.line_ok AND sb_caller_id_counts(a.uniqueid, a.ani)
                          THEN 'full' ELSE 'line-only' END;
        UPDATE verify_attempt SET finished_at = now(), outcome = v_outcome
         WHERE attempt_id = a.attempt_id;
        PERFORM sb_audit_append('agi', a.uniqueid, a.ani, a.agency, a.officer, 'verify',
                                v_outcome, v_detail);
        RETURN v_outcome;
    END IF;

    v_outcome := CASE WHEN a.status IN ('locked', 'throttled') THEN 'locked' ELSE 'failed' END;
    PERFORM sb_audit_append('agi', a.uniqueid, a.ani, a.agency, a.officer, 'verify',
                            CASE a.status WHEN 'ok' THEN 'wrong-pin' ELSE a.status END,
                            v_detail);
    IF a.status IN ('ok', 'unknown') THEN
        IF a.failures >= pol.max_failures THEN
            IF a.officer_id IS NOT NULL THEN
                UPDATE officer SET locked_until = now() + make_interval(mins => pol.lock_minutes)
                 WHERE officer_id = a.officer_id AND (locked_until IS NULL
                                                      OR locked_until <= now());
            ELSE
                UPDATE verify_claim
                   SET locked_until = now() + make_interval(mins => pol.lock_minutes)
                 WHERE agency = a.agency AND officer = a.officer
                   AND (locked_until IS NULL OR locked_until <= now());
            END IF;
            IF FOUND THEN
                PERFORM sb_audit_append('agi', a.uniqueid, a.ani, a.agency, a.officer,
                                        'lockout', format('%s failures', a.failures));
            END IF;
            v_outcome := 'locked';
        END IF;
    END IF;

    IF a.status <> 'throttled' THEN
        INSERT INTO ani_throttle AS t VALUES (a.ani, now(), 1, NULL)
        ON CONFLICT (ani) DO UPDATE
           SET window_start = CASE WHEN t.window_start < now() - interval '1 hour'
                                   THEN now() ELSE t.window_start END,
               failures = CASE WHEN t.window_start < now() - interval '1 hour'
                               THEN 1 ELSE t.failures + 1 END
        RETURNING * INTO v_ani;
        IF v_ani.failures >= pol.ani_max_failures
           AND (v_ani.blocked_until IS NULL OR v_ani.blocked_until <= now()) THEN
            UPDATE ani_throttle
               SET blocked_until = now() + make_interval(mins => pol.ani_block_minutes),
                   failures = 0, window_start = now()
             WHERE ani = a.ani;
            PERFORM sb_audit_append('agi', a.uniqueid, a.ani, NULL, NULL, 'throttle',
                                    format('%s failures in an hour', v_ani.failures));
        END IF;
    END IF;
    UPDATE verify_attempt SET finished_at = now(), outcome = v_outcome
     WHERE attempt_id = a.attempt_id;
    RETURN v_outcome;
END $$;

-- The service's other verification rows (a hang-up, an error, a shed attempt)
-- carry the caller-ID evidence too.
CREATE OR REPLACE FUNCTION sb_agi_audit(p_uniqueid text, p_ani text, p_action text,
                                        p_result text)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF p_action NOT IN ('verify', 'lookup')
       OR p_result NOT IN ('hangup', 'not-verified', 'error', 'shed') THEN
        RAISE EXCEPTION 'sb_agi_audit: % % not allowed', p_action, p_result;
    END IF;
    RETURN sb_audit_append('agi', p_uniqueid, p_ani, NULL, NULL, p_action, p_result,
                           CASE WHEN p_action = 'verify'
                                THEN sb_caller_id_detail(left(p_uniqueid, 150)) END);
END $$;

-- What the agent is told about a call's caller ID, in words.
CREATE FUNCTION sb_caller_id_words(p_uniqueid text) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT coalesce((SELECT CASE c.result
        WHEN 'passed' THEN format('validated, attestation %s', coalesce(c.attest, 'not given'))
        WHEN 'failed' THEN 'VALIDATION FAILED: the number may be spoofed'
        WHEN 'not-validated' THEN 'not validated by the carrier (unsigned)'
        WHEN 'absent' THEN 'no validation result from the carrier'
        WHEN 'not-provided' THEN 'not checked (the carrier provides no validation)'
        ELSE 'could not be checked' END
      FROM caller_id_check c WHERE c.uniqueid = p_uniqueid), 'not checked')
$$;

-- The panel's view of a call's verification (0012) says what the caller ID's
-- check found, and why a registered line did not make a caller `full`.
DROP FUNCTION sb_panel_calls(integer);
DROP FUNCTION sb_panel_verification(text);
CREATE FUNCTION sb_panel_verification(p_uniqueid text,
    OUT level text, OUT why text, OUT agency_id integer, OUT agency_code text,
    OUT agency_name text, OUT officer_number text, OUT officer_name text, OUT ani text,
    OUT registered_line boolean, OUT caller_id text, OUT caller_id_failed boolean)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    a verify_attempt;
BEGIN
    caller_id := sb_caller_id_words(p_uniqueid);
    caller_id_failed := EXISTS (SELECT 1 FROM caller_id_check c
                                 WHERE c.uniqueid = p_uniqueid AND c.result = 'failed');
    SELECT * INTO a FROM verify_attempt v WHERE v.uniqueid = p_uniqueid
     ORDER BY (v.outcome IN ('full', 'line-only')) DESC NULLS LAST, v.started_at DESC
     LIMIT 1;
    IF FOUND THEN
        agency_code := a.agency; officer_number := a.officer; ani := a.ani;
        registered_line := a.line_ok;
        SELECT g.agency_id, g.name INTO agency_id, agency_name
          FROM agency g WHERE g.code = a.agency;
        SELECT o.name INTO officer_name FROM officer o WHERE o.officer_id = a.officer_id;
        IF a.outcome IN ('full', 'line-only') THEN
            level := a.outcome;
            IF a.outcome = 'line-only' THEN
                why := CASE
                    WHEN NOT a.line_ok THEN 'not the agency''s registered line'
                    WHEN caller_id_failed THEN 'registered line, but its caller ID FAILED validation'
                    ELSE 'registered line, but its caller ID is not attested (A)' END;
            END IF;
        ELSE
            level := 'unverified';
            why := CASE
                WHEN a.finished_at IS NULL THEN 'verification not finished'
                WHEN a.status = 'throttled' THEN 'calling number blocked after failures'
                WHEN a.status = 'locked' OR a.outcome = 'locked' THEN 'officer locked'
                WHEN a.status = 'unknown' THEN 'unknown agency or officer id'
                ELSE 'wrong PIN' END;
        END IF;
    ELSE
        level := 'unverified';
        why := 'no verification on this call';
    END IF;
    IF EXISTS (SELECT 1 FROM oob_call c WHERE c.uniqueid = p_uniqueid
                  AND c.purpose = 'verify' AND c.confirmed) THEN
        level := 'callback';
        why := NULL;
        SELECT c.agency_id, g.code, g.name INTO agency_id, agency_code, agency_name
          FROM oob_call c JOIN agency g USING (agency_id)
         WHERE c.uniqueid = p_uniqueid AND c.purpose = 'verify' AND c.confirmed
         ORDER BY c.confirmed_at DESC LIMIT 1;
    END IF;
END $$;

CREATE FUNCTION sb_panel_calls(p_agent_id integer)
RETURNS TABLE (uniqueid text, queue text, state text, mine boolean, caller_num text,
               entered_at timestamptz, answered_at timestamptz, ended_at timestamptz,
               member_name text, level text, why text, agency_code text, agency_name text,
               officer_number text, officer_name text, ani text, registered_line boolean,
               case_ref text, case_priority text, disposition text, caller_id text,
               caller_id_failed boolean)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    me  agent := sb_panel_agent_row(p_agent_id);
    pol panel_policy;
BEGIN
    IF me.agent_id IS NULL THEN
        RETURN;
    END IF;
    SELECT * INTO pol FROM panel_policy;
    RETURN QUERY
    WITH c AS (
        SELECT DISTINCT ON (q.uniqueid) q.*,
               CASE WHEN q.ended_at IS NOT NULL THEN 'ended'
                    WHEN q.answered_at IS NOT NULL THEN 'connected'
                    WHEN me.interface = ANY (q.ringing) THEN 'ringing'
                    ELSE 'waiting' END AS st,
               (q.member_interface = me.interface
                OR (q.answered_at IS NULL AND me.interface = ANY (q.ringing))) AS is_mine
          FROM queue_call q
         WHERE ((q.ended_at IS NULL AND q.entered_at > now() - interval '1 day'
                 AND (me.interface = ANY (q.ringing) OR q.member_interface = me.interface
                      OR me.role = 'supervisor'))
                OR (q.member_interface = me.interface AND q.answered_at IS NOT NULL
                    AND q.ended_at > now() - make_interval(mins => pol.after_call_minutes)
                    AND NOT EXISTS (SELECT 1 FROM call_disposition d
                                     WHERE d.uniqueid = q.uniqueid)))
         ORDER BY q.uniqueid, q.entered_at DESC
    )
    SELECT c.uniqueid, c.queue, c.st, c.is_mine, left(c.caller_num, 40), c.entered_at,
           c.answered_at, c.ended_at, c.member_name, v.level, v.why, v.agency_code,
           v.agency_name, v.officer_number, v.officer_name, v.ani, v.registered_line,
           CASE WHEN v.level IN ('full', 'line-only', 'callback') THEN k.ref END,
           CASE WHEN v.level IN ('full', 'line-only', 'callback') THEN k.priority END,
           d.code, v.caller_id, v.caller_id_failed
      FROM c
      CROSS JOIN LATERAL sb_panel_verification(c.uniqueid) v
      LEFT JOIN LATERAL sb_panel_case_of(c.uniqueid) k ON true
      LEFT JOIN call_disposition d ON d.uniqueid = c.uniqueid
     ORDER BY c.is_mine DESC, c.entered_at DESC
     LIMIT 50;
END $$;

-- The wall board's attested share: today's calls by what their caller ID's
-- check found (counts only; sb_reports reads no number).
CREATE FUNCTION sb_caller_id_split(p_since timestamptz)
RETURNS TABLE (kind text, calls bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    WITH k AS (
        SELECT CASE WHEN result = 'passed' AND attest = 'A' THEN 'attested-a'
                    WHEN result = 'passed' THEN 'attested-bc'
                    WHEN result = 'failed' THEN 'failed'
                    ELSE 'not-attested' END AS kind
          FROM caller_id_check WHERE checked_at >= p_since)
    SELECT l.kind, count(k.kind)
      FROM (VALUES (1, 'attested-a'), (2, 'attested-bc'), (3, 'not-attested'), (4, 'failed'))
           AS l (n, kind)
      LEFT JOIN k USING (kind)
     GROUP BY l.n, l.kind ORDER BY l.n
$$;

REVOKE ALL ON caller_id_check FROM PUBLIC;
REVOKE ALL ON FUNCTION sb_caller_id_detail(text), sb_caller_id_counts(text, text),
    sb_agi_caller_id(text, text, text, text, text, text), sb_caller_id_words(text),
    sb_panel_verification(text), sb_panel_calls(integer), sb_caller_id_split(timestamptz)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sb_agi_caller_id(text, text, text, text, text, text) TO sb_agi;
GRANT EXECUTE ON FUNCTION sb_panel_calls(integer) TO sb_panel;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sb_reports') THEN
        EXECUTE 'GRANT EXECUTE ON FUNCTION sb_caller_id_split(timestamptz) TO sb_reports';
    END IF;
END $$;
