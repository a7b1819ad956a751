-- Wrap-up measured by the agent panel (issue 12) feeds AHT (sql/kpi.md): an
-- answered call's handle time is its talk time plus its wrap-up, from the end
-- of the call to the save of its disposition (call_disposition.wrapup_s), or
-- plus W (the queue's wrapuptime, the old rule) when none was saved.
--
-- sb_call_fact gains wrapup_s; sb_kpi_queue and sb_kpi_agent are the functions
-- of 0005 with only their AHT lines changed (applied migrations are never
-- edited, so they are declared again here whole).

