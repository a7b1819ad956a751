"""AMI listener: Asterisk queue and agent events into PostgreSQL, exactly once.

Stages (each a small module, wired in ``service``):
``client`` (socket, login, ping watchdog) -> ``framing`` (bytes to frames) ->
``spool`` (durable, bounded, ordered) -> ``normalise`` (frames to typed records) ->
``derive`` (queue calls, agent states) -> ``writer`` (COPY, one transaction a batch).
"""
