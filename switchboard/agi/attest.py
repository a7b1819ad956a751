"""Caller-ID attestation (STIR/SHAKEN): what the dialplan collected in
``SB_ATTEST``, reduced to (source, attestation, result).

The dialplan's ``[sb-attest]`` (dialplan/extensions.conf) sets ``SB_ATTEST``
from the site's ``CALLER_ID_ATTEST`` setting, one of:

``verstat``   ``verstat <P-Asserted-Identity> <From>`` (the headers as they
              came, each cut at 250 characters): the terminating carrier's
              verdict as a ``verstat`` URI parameter (``TN-Validation-Passed``,
              ``-Failed``, ``No-TN-Validation``, optionally with ``-A``/``-B``/
              ``-C``), in the URI's user part or after its host.  Only URIs
              count: quoted display names are skipped, and of a URI written
              without ``<>`` only the user part (what follows it are header
              parameters).
``verstat-a`` the same, from a carrier that marks ``TN-Validation-Passed``
              only calls signed with attestation A (read as A).
``identity``  ``identity <count> <attestation> <verify_result>``: Asterisk's
              own verification of the ``Identity`` header (res_stir_shaken,
              ``STIR_SHAKEN(0, ...)``); the attestation is empty when the
              verification failed before the PASSporT was read (a call with
              no Identity header has count 1 and ``missing_identity_hdr``).
``none``      the carrier provides nothing.
``unproven``  the call was matched to the carrier but did not arrive on the
              carrier's own transport ([sb-carrier-proof]: its address may be
              forged): whatever it says about its caller ID is not read, and it
              counts as not attested.

Everything here is hostile input (the URIs come from the caller's network): it
is bounded, must be printable ASCII, and anything unreadable is ``error``
(never ``passed``).  Two different verdicts for one call are ``failed``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SOURCES = ("verstat", "verstat-a", "identity", "none", "unproven")
RESULTS = ("passed", "failed", "not-validated", "absent", "not-provided", "error",
           "unproven")
MAX_LEN = 600
_TOKEN = re.compile(r"[A-Za-z0-9_.-]{1,40}")
_VERSTAT = re.compile(r"(?i)(TN-Validation-Passed|TN-Validation-Failed|No-TN-Validation)"
                      r"(?:-([ABC]))?")

# Asterisk 22 res_stir_shaken verify_result values (verification.c, vs_rc_map)
# that say the call was not validated at all, or could not be checked; every
# other known value is a failed validation.
IDENTITY_NOT_VALIDATED = frozenset({"missing_identity_hdr", "disabled"})
IDENTITY_ERROR = frozenset({"internal_error", "invalid_arguments", "cert_cache_miss",
                            "cert_retrieval_failure"})
IDENTITY_FAILED = frozenset({
    "missing_date_hdr", "date_hdr_parse_failure", "date_hdr_range_error", "missing_jwt_hdr",
    "cert_cache_invalid", "cert_cache_expired", "cert_contents_invalid", "cert_not_trusted",
    "cert_date_failure", "cert_no_tn_auth_ext", "cert_no_spc_in_auth_ext", "no_raw_key",
    "signature_validation", "missing_iat", "iat_range_error", "invalid_or_no_ppt",
    "invalid_or_no_alg", "invalid_or_no_typ", "invalid_or_no_grants", "invalid_or_no_attest",
    "missing_origid", "missing_orig_tn", "cid_orig_tn_mismatch", "missing_dest_tn",
    "invalid_header", "invalid_grant", "invalid_or_no_callerid"})


@dataclass(frozen=True)
class CallerIdCheck:
    source: str
    attest: str | None  # A | B | C
    result: str
    reason: str | None  # the carrier's verstat token or Asterisk's verify_result

    @property
    def label(self) -> str:
        """What the dialplan gets in SB_CALLER_ID: ``A-passed`` (B-, C-), ``passed``
        (no level given), or the result."""
        if self.result == "passed" and self.attest:
            return f"{self.attest}-passed"
        return self.result

    @property
    def attested_a(self) -> bool:
        return self.result == "passed" and self.attest == "A"


def _error(source: str, reason: str) -> CallerIdCheck:
    return CallerIdCheck(source, None, "error", reason)


def verstat_values(uri: str) -> list[str]:
    """The ``verstat`` parameters of one SIP or tel URI, from its user part
    (``sip:+1...;verstat=X@host``) and after its host (``...@host;verstat=X``)."""
    _, _, rest = uri.partition(":")
    rest = rest.split("?", 1)[0]
    user, at, host = rest.rpartition("@")
    parts = (user.split(";")[1:] + host.split(";")[1:]) if at else host.split(";")[1:]
    return [value for name, _, value in (p.partition("=") for p in parts)
            if name.strip().lower() == "verstat"]


def same_number(uri: str, ani: str | None) -> bool:
    """Is the URI's user part the caller ID we have (E.164 ``ani``)?  A verdict
    on another number says nothing about this one.  Digits are compared, the
    shorter (at least 10) being the end of the longer: ``+16155550100``,
    ``16155550100`` and ``6155550100`` are one number."""
    if ani is None or not ani.startswith("+"):
        return True  # withheld: no registered line can match anyway
    rest = uri.partition(":")[2].split("?", 1)[0]
    user = (rest.rpartition("@")[0] if "@" in rest else rest).split(";", 1)[0]
    a, b = "".join(c for c in user if c.isdigit()), ani[1:]
    short, long_ = sorted((a, b), key=len)
    return len(short) >= 10 and long_.endswith(short)


def header_uris(text: str) -> list[str]:
    """The SIP/tel URIs of name-addr or addr-spec headers written one after the
    other: every ``<...>`` outside a quoted string, and bare ``sip:``/``tel:``
    tokens (cut at their host: what follows belongs to the header)."""
    uris: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':  # a quoted display name: skipped, escapes and all
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
            i += 1
        elif c == "<":
            end = text.find(">", i + 1)
            if end < 0:
                break
            uris.append(text[i + 1:end])
            i = end + 1
        elif c.isspace():
            i += 1
        else:
            end = i
            while end < n and not text[end].isspace() and text[end] not in '"<':
                end += 1
            token = text[i:end]
            if token.lower().startswith(("sip:", "sips:", "tel:")):
                scheme, _, rest = token.partition(":")
                user, at, _host = rest.partition("@")
                uris.append(f"{scheme}:{user}@-" if at else token.split(";", 1)[0])
            i = end
    return uris


def _from_verstat(source: str, uris: list[str], ani: str | None) -> CallerIdCheck:
    values = {v for uri in uris if same_number(uri, ani) for v in verstat_values(uri)}
    if not values:
        return CallerIdCheck(source, None, "absent", None)
    if len(values) > 1:
        return CallerIdCheck(source, None, "failed", "verstat-conflict")
    value = values.pop()
    m = _VERSTAT.fullmatch(value)
    if m is None:
        return _error(source, "verstat-unknown")
    verdict, level = m.group(1).lower(), m.group(2)
    reason = m.group(0)
    if verdict == "tn-validation-passed":
        if level is None and source == "verstat-a":
            level = "A"
        return CallerIdCheck(source, level.upper() if level else None, "passed", reason)
    if verdict == "tn-validation-failed":
        return CallerIdCheck(source, level.upper() if level else None, "failed", reason)
    return CallerIdCheck(source, None, "not-validated", reason)


def _from_identity(words: list[str]) -> CallerIdCheck:
    source = "identity"
    if not words or not words[0].isdigit() or len(words[0]) > 3:
        return _error(source, "identity-unreadable")
    if int(words[0]) == 0:  # no Identity header was verified on this call
        return CallerIdCheck(source, None, "not-validated", "missing_identity_hdr")
    if len(words) == 2:  # a failure before the PASSporT was read: no attestation
        words = [words[0], "-", words[1]]
    if len(words) != 3:
        return _error(source, "identity-unreadable")
    attest, result = words[1].upper(), words[2].lower()
    if result == "success":
        if attest not in ("A", "B", "C"):
            return CallerIdCheck(source, None, "failed", "invalid_or_no_attest")
        return CallerIdCheck(source, attest, "passed", result)
    level = attest if attest in ("A", "B", "C") else None
    if result in IDENTITY_NOT_VALIDATED:
        return CallerIdCheck(source, level, "not-validated", result)
    if result in IDENTITY_ERROR:
        return CallerIdCheck(source, level, "error", result)
    if result in IDENTITY_FAILED:
        return CallerIdCheck(source, level, "failed", result)
    return _error(source, "identity-unknown")


def parse(raw: str | None, ani: str | None = None) -> CallerIdCheck:
    """``SB_ATTEST`` as the dialplan set it (None or empty: the dialplan does not
    collect attestation, which is the same as a carrier that sends nothing), for
    the caller ID ``ani`` (E.164, or ``withheld``): a ``verstat`` on a URI of
    another number is not this call's verdict."""
    if raw is None or not raw.strip():
        return CallerIdCheck("none", None, "not-provided", None)
    if len(raw) > MAX_LEN or not raw.isascii() or not raw.isprintable():
        return _error("none", "unreadable")
    words = raw.split()
    source = words[0].lower()
    if source not in SOURCES:
        return _error("none", "unknown-source")
    if source == "none":
        return CallerIdCheck("none", None, "not-provided", None)
    if source == "unproven":
        return CallerIdCheck("unproven", None, "unproven", "off-carrier-transport")
    if source == "identity":
        return _from_identity(words[1:])
    return _from_verstat(source, header_uris(raw.strip()[len(words[0]):]), ani)
