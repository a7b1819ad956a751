CREATE OR REPLACE FUNCTION sb_panel_actor(p_agent agent) RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT 'agent:' || p_agent.login $$;
