CREATE OR REPLACE FUNCTION sb_event_partition_check(p_name text) RETURNS regclass
LANGUAGE plpgsql STABLE SET search_path = public, pg_temp AS $$
DECLARE
    rel regclass;
BEGIN
    IF p_name !~ '^ami_event_[0-9]{8}$' THEN
        RAISE EXCEPTION 'not a day partition of ami_event: %', p_name;
    END IF;
    rel := to_regclass(quote_ident(p_name));
    IF rel IS NULL OR NOT EXISTS (SELECT 1 FROM pg_inherits
                                   WHERE inhrelid = rel AND inhparent = 'ami_event'::regclass)
    THEN
        RAISE EXCEPTION 'not a day partition of ami_event: %', p_name;
    END IF;
    RETURN rel;
END $$;

REVOKE ALL ON FUNCTION sb_event_partition_check(p_name text) FROM PUBLIC;
