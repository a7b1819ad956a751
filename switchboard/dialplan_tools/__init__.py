"""Tooling for the Asterisk configuration in dialplan/: check and deploy."""
