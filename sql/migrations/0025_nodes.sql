-- Several Asterisk nodes behind the SIP front (issue 23).
--
-- node_status: what the listener knows of each node it reads: 'up' since its
-- last login, or 'lost' since its last bytes, when it stayed silent for
-- SB_NODE_LOST_S (a dead Asterisk, or a host gone).  The wall board says so
-- plainly and stops counting the node's agents; the front already sends new
-- calls elsewhere.
CREATE TABLE node_status (
    node       text PRIMARY KEY CHECK (length(node) BETWEEN 1 AND 80),
    state      text NOT NULL CHECK (state IN ('up', 'lost')),
    since      timestamptz NOT NULL,
    reason     text CHECK (length(reason) <= 200),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- who asked for a callback: the caller (the IVR's offer), or nobody: the node
-- the caller was on died after verifying them in full (sb_listener_node_state)
ALTER TABLE callback_request
    ADD COLUMN origin text NOT NULL DEFAULT 'caller' CHECK (origin IN ('caller', 'node-lost'));

-- the callers a lost node had verified in full, found by when (below)
CREATE INDEX verify_attempt_full_idx ON verify_attempt (finished_at) WHERE outcome = 'full';

REVOKE ALL ON node_status FROM PUBLIC;

-- Agents on every node: an agent's login, logout and pause (a feature code on
-- the desk phone, or the panel) made on one node is the state every node
-- follows.  The listener of the node where it happened records it (from
-- QueueMemberAdded, QueueMemberRemoved, QueueMemberPause, never from a state
-- report or a QueueStatus list); every listener applies it to its own node
-- (QueueAdd, QueueRemove, QueuePause), at once on NOTIFY sb_presence and again
-- after each login.  A node that applies it reports the same state back, which
-- changes nothing and notifies nobody.  Newer changes win (by Asterisk's event
-- time).
CREATE TABLE agent_presence (
    queue       text NOT NULL CHECK (length(queue) BETWEEN 1 AND 80),
    interface   text NOT NULL CHECK (interface ~ '^[A-Za-z]{2,10}/[A-Za-z0-9_.@-]{1,80}$'),
    member_name text CHECK (length(member_name) <= 80),
    logged_in   boolean NOT NULL,
    paused      boolean NOT NULL,
    reason      text CHECK (length(reason) <= 80),
    at          timestamptz NOT NULL,
    node        text NOT NULL CHECK (length(node) BETWEEN 1 AND 80),
    PRIMARY KEY (queue, interface)
);

REVOKE ALL ON agent_presence FROM PUBLIC;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sb_reports') THEN
        EXECUTE 'GRANT SELECT ON agent_presence TO sb_reports';
    END IF;
END $$;
