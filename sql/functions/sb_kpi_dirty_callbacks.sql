CREATE OR REPLACE FUNCTION sb_kpi_dirty_callbacks() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM sb_kpi_mark_uniqueids(ARRAY(SELECT uniqueid FROM new_rows),
                                      ARRAY(SELECT requested_at FROM new_rows));
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM sb_kpi_mark_uniqueids(ARRAY(SELECT uniqueid FROM old_rows),
                                      ARRAY(SELECT requested_at FROM old_rows));
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER callback_request_kpi_ins AFTER INSERT ON callback_request
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sb_kpi_dirty_callbacks();

CREATE OR REPLACE TRIGGER callback_request_kpi_upd AFTER UPDATE ON callback_request
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sb_kpi_dirty_callbacks();

CREATE OR REPLACE TRIGGER callback_request_kpi_del AFTER DELETE ON callback_request
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sb_kpi_dirty_callbacks();
