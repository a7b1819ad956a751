"""Shared code of the switchboard services: settings, logging, database pool, local cluster."""

__version__ = "0.1.0"
