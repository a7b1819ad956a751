-- The mix's marks for the tables whose rows count where a column of their own
-- says (sb_mix_rows): caller_id_check.checked_at, callback_request.requested_at,
-- call_disposition.saved_at, queue_call.entered_at (transferred rows only).
-- A statement trigger: the statement's rows, before and after, whichever the
-- event.  TG_ARGV: the part, the time column, and whether only transferred
-- rows count.  Verification attempts have their own (sb_mix_dirty_verify).
CREATE OR REPLACE FUNCTION sb_mix_dirty() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    -- one of two fixed filters, never text from outside
    row_filter CONSTANT text := CASE WHEN TG_ARGV[2] = 'transferred'
                               THEN ' WHERE outcome = ''transferred''' ELSE '' END;
    times timestamptz[] := '{}';
    more  timestamptz[];
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        EXECUTE format('SELECT array_agg(%I) FROM new_rows', TG_ARGV[1]) || row_filter INTO more;
        times := times || coalesce(more, '{}');
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        EXECUTE format('SELECT array_agg(%I) FROM old_rows', TG_ARGV[1]) || row_filter INTO more;
        times := times || coalesce(more, '{}');
    END IF;
    IF cardinality(times) > 0 THEN
        PERFORM sb_mix_mark(times, TG_ARGV[0]);
    END IF;
    RETURN NULL;
END $$;

REVOKE ALL ON FUNCTION sb_mix_dirty() FROM PUBLIC;

-- caller-ID checks and nothing on delete: the AGI's 30-day housekeeping
-- removes the rows, the bins keep what was seen (0028)
CREATE OR REPLACE TRIGGER caller_id_check_mix_ins AFTER INSERT ON caller_id_check
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sb_mix_dirty('caller_id', 'checked_at', 'all');
CREATE OR REPLACE TRIGGER caller_id_check_mix_upd AFTER UPDATE ON caller_id_check
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sb_mix_dirty('caller_id', 'checked_at', 'all');

CREATE OR REPLACE TRIGGER callback_request_mix_ins AFTER INSERT ON callback_request
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sb_mix_dirty('callbacks', 'requested_at', 'all');
CREATE OR REPLACE TRIGGER callback_request_mix_upd AFTER UPDATE ON callback_request
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sb_mix_dirty('callbacks', 'requested_at', 'all');
CREATE OR REPLACE TRIGGER callback_request_mix_del AFTER DELETE ON callback_request
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sb_mix_dirty('callbacks', 'requested_at', 'all');

CREATE OR REPLACE TRIGGER call_disposition_mix_ins AFTER INSERT ON call_disposition
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sb_mix_dirty('dispositions', 'saved_at', 'all');
CREATE OR REPLACE TRIGGER call_disposition_mix_upd AFTER UPDATE ON call_disposition
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sb_mix_dirty('dispositions', 'saved_at', 'all');
CREATE OR REPLACE TRIGGER call_disposition_mix_del AFTER DELETE ON call_disposition
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sb_mix_dirty('dispositions', 'saved_at', 'all');

CREATE OR REPLACE TRIGGER queue_call_mix_ins AFTER INSERT ON queue_call
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sb_mix_dirty('transfers', 'entered_at', 'transferred');
CREATE OR REPLACE TRIGGER queue_call_mix_upd AFTER UPDATE ON queue_call
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sb_mix_dirty('transfers', 'entered_at', 'transferred');
CREATE OR REPLACE TRIGGER queue_call_mix_del AFTER DELETE ON queue_call
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sb_mix_dirty('transfers', 'entered_at', 'transferred');
