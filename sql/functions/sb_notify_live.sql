-- Push for the wall board: one notification per committed statement that
-- changed calls or agent states (statement-level: a 5,000-row batch is one).
CREATE OR REPLACE FUNCTION sb_notify_live() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('sb_live', TG_TABLE_NAME);
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER queue_call_notify AFTER INSERT OR UPDATE ON queue_call
    FOR EACH STATEMENT EXECUTE FUNCTION sb_notify_live();

CREATE OR REPLACE TRIGGER agent_state_notify AFTER INSERT OR UPDATE ON agent_state
    FOR EACH STATEMENT EXECUTE FUNCTION sb_notify_live();
