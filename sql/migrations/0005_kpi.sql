-- Call-center figures.  Every definition is written once, in sql/kpi.md; the
-- names below are the ones used there.  Functions, not materialised tables: they
-- read queue_call, agent_state, callback_request and ami_event as they are now.


-- The role reports and the wall board read with: the views and functions only.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sb_reports') THEN
        BEGIN
            CREATE ROLE sb_reports NOLOGIN;
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE NOTICE 'role sb_reports not created (no CREATEROLE); reports run as the owner';
        END;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sb_reports') THEN
        EXECUTE 'GRANT SELECT ON queue_call, agent_state, callback_request, listener_gap, '
                'ami_event TO sb_reports';
    END IF;
END $$;
