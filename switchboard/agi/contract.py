"""The channel variables the AGI handlers and the dialplan exchange: the one
list both sides are checked against (`switchboard dialplan check`, and
tests/agi/test_contract.py, which runs every handler and compares what it
really sets and reads with this).

The prefix ``SB_`` is reserved for these; the dialplan's own variables are
``IVR_*``.
"""

from __future__ import annotations

# handler -> variables it sets on the channel
SETS: dict[str, frozenset[str]] = {
    "verify": frozenset({"SB_VERIFIED", "SB_AGENCY", "SB_OFFICER", "SB_CALLER_ID"}),
    "lookup": frozenset({"SB_LOOKUP", "SB_CASE_REF", "SB_CASE_PRIORITY"}),
    "callback": frozenset({"SB_CALLBACK"}),
    "oob": frozenset({"SB_OOB", "SB_OOB_ID", "SB_OOB_NUMBER"}),
    "oob-confirm": frozenset({"SB_OOB_CONFIRM"}),
    "outbound": frozenset({"SB_OUTBOUND", "SB_OUTBOUND_ID", "SB_OUTBOUND_GRANT_S",
                           "SB_OUTBOUND_REASON"}),
    "outbound-end": frozenset({"SB_OUTBOUND_END"}),
    "emergency": frozenset({"SB_E911"}),
}

# handler -> variables it reads from the channel (set earlier by the dialplan or
# by another handler)
READS: dict[str, frozenset[str]] = {
    # SB_ATTEST: the caller ID's attestation as the dialplan collected it
    # ([sb-attest], from the site's CALLER_ID_ATTEST; switchboard/agi/attest.py reads it)
    "verify": frozenset({"SB_ATTEST"}),
    "lookup": frozenset({"SB_VERIFIED"}),
    "callback": frozenset({"SB_CASE_REF"}),
    "oob": frozenset(),
    # SB_OOB_DIAL: the dialplan's copy of DIALSTATUS after dialling the agency
    "oob-confirm": frozenset({"SB_OOB_ID", "SB_OOB_DIAL"}),
    # the outbound gate ([sb-outbound]): what is dialled, why, and this node's
    # outbound legs now (GROUP_COUNT, this call included) against its cap
    "outbound": frozenset({"SB_OUTBOUND_PURPOSE", "SB_OUTBOUND_NUMBER", "SB_OUTBOUND_LEGS",
                           "SB_OUTBOUND_MAX_LEGS"}),
    # at hangup: the grant and what was used of it (ANSWEREDTIME)
    "outbound-end": frozenset({"SB_OUTBOUND_ID", "SB_OUTBOUND_ANSWERED_S"}),
    # at the end of a 911 call ([sb-emergency-end]): who, where, and how it went
    "emergency": frozenset({"SB_E911_PHONE", "SB_E911_ELIN", "SB_E911_PLACE",
                            "SB_E911_STATUS", "SB_E911_ANSWERED_S"}),
}

HANDLERS = frozenset(SETS)
ALL = frozenset().union(*SETS.values(), *READS.values())
