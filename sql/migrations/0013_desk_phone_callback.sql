-- Calling the agency back from the desk phone (issue 12), for agents without a
-- screen: the feature code *30 runs the AGI handlers oob and oob-confirm, which
-- (as sb_agi) reach the same decisions as the panel through these two
-- functions.  The agent is the owner of the phone the code was dialled from
-- (agent.interface); the call is the one that agent is talking to now.

-- outcome: started | refused (why); the number is the agency's registered line.
CREATE FUNCTION sb_agi_oob_begin(p_interface text,
    OUT outcome text, OUT why text, OUT oob_id bigint, OUT e164 text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    a   agent;
    v_uid text;
    r   record;
BEGIN
    SELECT * INTO a FROM agent WHERE interface = left(p_interface, 60)
       AND disabled_at IS NULL;
    IF NOT FOUND THEN
        outcome := 'refused'; why := 'no agent on this phone';
        PERFORM sb_audit_append('agi', NULL, NULL, NULL, NULL, 'oob-dial', 'refused',
                                format('%s: no agent', left(p_interface, 60)));
        RETURN;
    END IF;
    SELECT q.uniqueid INTO v_uid FROM queue_call q
     WHERE q.member_interface = a.interface AND q.answered_at IS NOT NULL
       AND q.ended_at IS NULL AND q.entered_at > now() - interval '1 day'
     ORDER BY q.answered_at DESC LIMIT 1;
    IF v_uid IS NULL THEN
        outcome := 'refused'; why := 'no call in progress';
        PERFORM sb_audit_append(sb_panel_actor(a), NULL, NULL, NULL, NULL, 'oob-dial',
                                'refused', 'desk phone: no call in progress');
        RETURN;
    END IF;
    r := sb_panel_oob_begin(a.agent_id, v_uid, NULL);
    outcome := r.outcome; why := r.why; oob_id := r.oob_id; e164 := r.e164;
END $$;

-- After the dialplan's Dial: whether the agency answered, then the agent's key
-- (1: confirmed, 2: not), or NULL when no key was pressed.
-- Returns callback | callback-denied | not-reached | refused | no-answer-given.
CREATE FUNCTION sb_agi_oob_confirm(p_interface text, p_oob_id bigint, p_answered boolean,
                                   p_confirmed boolean)
RETURNS text LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    a agent;
    c oob_call;
BEGIN
    SELECT * INTO a FROM agent WHERE interface = left(p_interface, 60)
       AND disabled_at IS NULL;
    SELECT * INTO c FROM oob_call WHERE oob_id = p_oob_id;
    IF a.agent_id IS NULL OR c.oob_id IS NULL OR c.agent_id <> a.agent_id THEN
        PERFORM sb_audit_append('agi', c.uniqueid, NULL, NULL, NULL, 'verify', 'refused',
                                format('desk-phone mark for oob %s', p_oob_id));
        RETURN 'refused';
    END IF;
    PERFORM sb_panel_oob_result(p_oob_id, CASE WHEN p_answered THEN 'accepted'
                                               ELSE 'failed' END, p_answered);
    IF NOT p_answered THEN
        RETURN 'not-reached';
    END IF;
    IF p_confirmed IS NULL THEN
        RETURN 'no-answer-given';
    END IF;
    RETURN sb_panel_oob_confirm(a.agent_id, p_oob_id, p_confirmed);
END $$;

REVOKE ALL ON FUNCTION sb_agi_oob_begin(text), sb_agi_oob_confirm(text, bigint, boolean, boolean)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sb_agi_oob_begin(text),
    sb_agi_oob_confirm(text, bigint, boolean, boolean) TO sb_agi;
