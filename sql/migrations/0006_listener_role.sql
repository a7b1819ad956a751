-- The AMI listener's own role: it writes events and what it derives from them,
-- and nothing else (no PINs, no audit, no cases).  Partitions are made by
-- sb_ensure_event_partition, which runs as the owner.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sb_listener') THEN
        BEGIN
            CREATE ROLE sb_listener NOLOGIN;
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE NOTICE 'role sb_listener not created (no CREATEROLE); the listener '
                'writes as the owner (SB_LISTENER_DB_ROLE=)';
        END;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sb_listener') THEN
        EXECUTE 'GRANT SELECT, INSERT ON ami_event TO sb_listener';
        EXECUTE 'GRANT SELECT, INSERT, UPDATE ON listener_checkpoint, listener_gap, '
                'queue_call, agent_state TO sb_listener';
        EXECUTE format('GRANT USAGE ON SEQUENCE %s TO sb_listener',
                       pg_get_serial_sequence('listener_gap', 'id'));
    END IF;
END $$;
