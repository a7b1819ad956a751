"""Checks on what the caller controls: caller ID and DTMF.

Everything here is pure and bounded: a value too long, with a byte outside its
charset, or simply absurd is refused (``None``), never passed on.
"""

from __future__ import annotations

import re

import phonenumbers
from stdnum import luhn

WITHHELD = "withheld"  # the throttle key shared by every caller with no usable caller ID
_RAW_ANI_RE = re.compile(r"\+?[0-9]{3,20}")
_URI_PARAMS_RE = re.compile(r"[A-Za-z0-9_.+=-]*(;[A-Za-z0-9_.+=-]*)*")
_WITHHELD_WORDS = {"", "anonymous", "unknown", "unavailable", "restricted", "private"}


def normalise_ani(raw: str | None, region: str) -> str | None:
    """Caller ID as E.164 (``+16155550123``), or None when withheld or unusable.

    Accepts what trunks send: ``+1...``, ``1`` + 10 digits, 10 digits, with or
    without formatting (``(615) 555-0123``), ``011`` + an international number,
    and national numbers of ``region`` (default US); URI user parameters
    (``;verstat=...``) are cut off, blanks, dashes, dots and brackets dropped.
    A number only dialable locally (seven digits in the U.S.) is unusable: it
    has no E.164 form.  Anything else (letters, SQL, control characters, 200
    characters of digits) is unusable.
    """
    if raw is None or len(raw) > 200:
        return None
    # a SIP URI user part's own parameters are not the number: carriers put the
    # verdict on the caller ID there (``6155550123;verstat=TN-Validation-Passed``)
    raw, semi, params = raw.partition(";")
    if len(raw) > 40 or (semi and not _URI_PARAMS_RE.fullmatch(params)):
        return None
    cleaned = re.sub(r"[ \-.()]", "", raw.strip())
    if cleaned.lower() in _WITHHELD_WORDS or not _RAW_ANI_RE.fullmatch(cleaned):
        return None
    try:
        number = phonenumbers.parse(cleaned, region)
    except phonenumbers.NumberParseException:
        return None
    if (phonenumbers.is_possible_number_with_reason(number)
            != phonenumbers.ValidationResult.IS_POSSIBLE):
        return None
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return e164 if re.fullmatch(r"\+[1-9][0-9]{6,14}", e164) else None


def digits(value: str | None, lo: int, hi: int) -> str | None:
    """``value`` if it is lo..hi ASCII digits, else None (``*``, ``#``, letters,
    empty input after a timeout)."""
    if value is None or not lo <= len(value) <= hi:
        return None
    return value if value.isascii() and value.isdigit() else None


def case_number_ok(value: str) -> bool:
    """Case numbers end in a Luhn check digit (ISO/IEC 7812-1 annex B, the scheme
    of payment cards): every single mistyped digit and nearly every swap of two
    neighbouring digits (all but 09/90) is caught before the database is asked."""
    return luhn.is_valid(value)


def with_check_digit(body: str) -> str:
    """``body`` followed by its Luhn check digit (for ops tools and the demo)."""
    return body + luhn.calc_check_digit(body)
