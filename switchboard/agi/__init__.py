"""AGI: the protocol layer (``protocol.py``, FastAGI over asyncio streams) is here;
the server, the handlers (verify, lookup) and the pyst2 process-AGI adapter come
with issue 3."""
