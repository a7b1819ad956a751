"""The top: the switchboard command and the demo that runs the whole system."""
