-- Calling the agency back from the desk phone (issue 12), for agents without a
-- screen: the feature code *30 runs the AGI handlers oob and oob-confirm, which
-- (as sb_agi) reach the same decisions as the panel through these two
-- functions.  The agent is the owner of the phone the code was dialled from
-- (agent.interface); the call is the one that agent is talking to now.

