"""Reference data and the audit log's checks (ops, run as the database owner)."""
