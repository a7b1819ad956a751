-- The audit log anchored outside the database (issue 11).
--
-- 1. Every row carries mac = HMAC-SHA256(audit key, its chain hash).  The key
--    is held outside the database, like the PIN pepper: the services that write
--    audit rows (the AGI service, the ops commands) hand it to their own session
--    as the startup setting sb.audit_key; no table and no other session can read
--    it.  A row written without the key (by anyone holding only the database)
--    has no valid MAC, and since the chain hash covers the row before, no row can
--    be edited, removed, swapped or re-hashed without the key.
-- 2. Signed checkpoints of every chain head (chain, seq, hash, time) are written
--    outside the database (`switchboard audit anchor`, and the AGI service every
--    SB_AUDIT_ANCHOR_INTERVAL_S, to SB_AUDIT_ANCHOR_FILE and the journal), so a
--    cut tail, a rolled-back head or a truncated log is caught too.
-- `switchboard audit verify` checks the chain, every MAC and every checkpoint.
CREATE EXTENSION IF NOT EXISTS pgcrypto;

ALTER TABLE audit_log ADD COLUMN mac bytea;
