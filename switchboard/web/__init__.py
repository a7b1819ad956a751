"""The web: the wall board (and the agent panel next), one app, one static folder."""
