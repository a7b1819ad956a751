"""AGI handlers (verify, lookup) and their two transports: the FastAGI server and
the process-AGI fallback.  Built with issue 3; nothing here is wired yet."""
