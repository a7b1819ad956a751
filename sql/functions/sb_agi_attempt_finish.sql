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

REVOKE ALL ON FUNCTION sb_agi_attempt_finish(p_attempt_id bigint, p_uniqueid text, p_pin_ok boolean, p_new_hash text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sb_agi_attempt_finish(p_attempt_id bigint, p_uniqueid text, p_pin_ok boolean, p_new_hash text) TO sb_agi;
