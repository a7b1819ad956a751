-- A recording stored: index it and put its digest in the call's audit chain.
-- Storing the same file again (a retry after the answer was lost) is a no-op;
-- another file under the same key is refused.
CREATE OR REPLACE FUNCTION sb_recorder_stored(p_uniqueid text, p_leg text, p_node text, p_key text,
                                   p_bytes bigint, p_sha256 bytea, p_seconds numeric,
                                   p_started timestamptz)
RETURNS text LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    had recording;
BEGIN
    SELECT * INTO had FROM recording WHERE store_key = p_key;
    IF FOUND THEN
        IF had.sha256 = p_sha256 THEN
            RETURN 'known';
        END IF;
        RAISE EXCEPTION 'sb_recorder_stored: % is already stored with another digest', p_key;
    END IF;
    INSERT INTO recording (uniqueid, leg, node, store_key, bytes, sha256, seconds, format,
                           started_at)
    VALUES (p_uniqueid, p_leg, p_node, p_key, p_bytes, p_sha256, round(p_seconds, 2), 'opus',
            p_started);
    PERFORM sb_audit_append('recorder:' || left(p_node, 80), p_uniqueid, NULL, NULL, NULL,
                            'recording-stored', 'ok',
                            encode(p_sha256, 'hex') || ' ' || right(p_key, 130));
    RETURN 'stored';
END $$;

REVOKE ALL ON FUNCTION sb_recorder_stored(p_uniqueid text, p_leg text, p_node text, p_key text, p_bytes bigint, p_sha256 bytea, p_seconds numeric, p_started timestamp with time zone) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sb_recorder_stored(p_uniqueid text, p_leg text, p_node text, p_key text, p_bytes bigint, p_sha256 bytea, p_seconds numeric, p_started timestamp with time zone) TO sb_recorder;
