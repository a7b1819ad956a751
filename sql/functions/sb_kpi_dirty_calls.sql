-- The trigger functions: the statement's rows, whichever the event (a
-- transition table exists only for its own event).
CREATE OR REPLACE FUNCTION sb_kpi_dirty_calls() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM sb_kpi_mark_calls(ARRAY(SELECT n::queue_call FROM new_rows n));
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM sb_kpi_mark_calls(ARRAY(SELECT o::queue_call FROM old_rows o));
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER queue_call_kpi_ins AFTER INSERT ON queue_call
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION sb_kpi_dirty_calls();

CREATE OR REPLACE TRIGGER queue_call_kpi_upd AFTER UPDATE ON queue_call
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sb_kpi_dirty_calls();

CREATE OR REPLACE TRIGGER queue_call_kpi_del AFTER DELETE ON queue_call
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION sb_kpi_dirty_calls();
