CREATE OR REPLACE FUNCTION sb_kpi_binof(t timestamptz) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT date_bin('15 minutes', t, timestamptz '2000-01-01 00:00:00+00')
$$;
