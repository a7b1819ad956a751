CREATE OR REPLACE FUNCTION sb_verify_rank(p_result text) RETURNS smallint
LANGUAGE sql IMMUTABLE AS $$
    SELECT (CASE p_result WHEN 'full' THEN 4 WHEN 'callback' THEN 3 WHEN 'line-only' THEN 2
                          ELSE 1 END)::smallint
$$;
