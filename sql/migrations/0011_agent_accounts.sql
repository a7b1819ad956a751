-- Agents' own accounts (issue 12): agents are people, so each has a login and a
-- password of their own, stored like PINs (argon2id of HMAC(pepper, password);
-- the pepper never enters the database).  role: agent (their own calls) or
-- supervisor (all live calls and the callback list).  interface: the desk
-- phone the agent answers on (a queue member), e.g. PJSIP/2001.  Managed by
-- the ops commands (switchboard agent ...), each change audited; no service
-- role may read this table.
CREATE TABLE agent (
    agent_id        serial PRIMARY KEY,
    login           text NOT NULL UNIQUE CHECK (login ~ '^[a-z][a-z0-9._-]{1,31}$'),
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    interface       text NOT NULL UNIQUE CHECK (interface ~ '^PJSIP/[A-Za-z0-9_.-]{1,40}$'),
    role            text NOT NULL DEFAULT 'agent' CHECK (role IN ('agent', 'supervisor')),
    password_hash   text CHECK (password_hash LIKE '$argon2id$%'),
    password_set_at timestamptz,
    disabled_at     timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now()
);
REVOKE ALL ON agent FROM PUBLIC;
