-- The panel's callback requests come a page at a time with their count
-- (issue 25): sb_panel_callbacks takes an offset and a limit now
-- (sql/functions/sb_panel_callbacks.sql), and the one-argument version goes.
-- The first change of a function's arguments since functions have their own
-- files: CREATE OR REPLACE cannot change them, so the old one is dropped here.
DROP FUNCTION IF EXISTS sb_panel_callbacks(integer);
