-- Close a claimed request with a disposition.  Returns closed | refused.
CREATE OR REPLACE FUNCTION sb_panel_callback_close(p_agent_id integer, p_request_id bigint, p_code text,
                                        p_note text)
RETURNS text LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    me  agent := sb_panel_agent_row(p_agent_id);
    r   callback_request;
BEGIN
    p_note := nullif(btrim(p_note), '');
    SELECT * INTO r FROM callback_request WHERE request_id = p_request_id FOR UPDATE;
    IF me.agent_id IS NULL OR r.request_id IS NULL OR r.status <> 'open'
       OR r.claimed_by IS DISTINCT FROM me.agent_id
       OR NOT sb_panel_disposition_ok(p_code)
       OR length(p_note) > 2000 THEN
        RETURN 'refused';
    END IF;
    UPDATE callback_request
       SET status = CASE WHEN p_code = 'not-reached' THEN 'failed' ELSE 'done' END,
           done_at = now(), disposition = p_code, note = p_note
     WHERE request_id = p_request_id;
    PERFORM sb_audit_append(sb_panel_actor(me), r.uniqueid, r.ani, NULL, NULL,
                            'callback-close', p_code,
                            format('request %s; %s', r.request_id,
                                   sb_panel_note_detail(p_note)));
    RETURN 'closed';
END $$;

REVOKE ALL ON FUNCTION sb_panel_callback_close(p_agent_id integer, p_request_id bigint, p_code text, p_note text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sb_panel_callback_close(p_agent_id integer, p_request_id bigint, p_code text, p_note text) TO sb_panel;
