-- A bin's recompute without PostgreSQL's JIT (issue 15).  At 100x the
-- reference volume a 15-minute bin holds about 6,800 calls, enough for the
-- planner's estimate of sb_kpi_bins to pass jit_above_cost: each of a
-- connection's first five refreshes (custom plans) then compiled the query,
-- about 130 ms on top of the 100 ms the recompute itself takes, and the wall
-- board's refresh measured 238 ms instead of 106 ms.  A bin is too small for
-- compiled expressions to pay back their compilation; a report over many bins
-- (sb_kpi_figures) keeps the server's setting (measured: no difference).
ALTER FUNCTION sb_kpi_refresh() SET jit = off;
