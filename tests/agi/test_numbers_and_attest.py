"""Pure checks, no database: caller IDs in every form U.S. carriers send, what
the dialplan's SB_ATTEST says about the caller ID's attestation, and the
interval arithmetic of a daylight saving day."""

from __future__ import annotations

from datetime import UTC

import pytest

from switchboard.agi import attest
from switchboard.agi.validate import normalise_ani
from switchboard.figures.report import Range, bucket_seconds
from switchboard.settings import ConfigError, site_tz

E164 = "+16155550123"  # NANP 555-0100..0199: reserved for fiction

NUMBER_FORMS = [
    ("+16155550123", E164),
    ("16155550123", E164),  # 1 + 10 digits
    ("6155550123", E164),  # 10 digits
    ("(615) 555-0123", E164),
    ("615-555-0123", E164),
    ("615.555.0123", E164),
    ("1 615 555 0123", E164),
    ("+1 (615) 555-0123", E164),
    ("  6155550123  ", E164),
    ("6155550123;verstat=TN-Validation-Passed-A", E164),  # verstat in the From user part
    ("+16155550123;npdi;rn=+16155550000", E164),
    (";verstat=TN-Validation-Passed-A", None),
    ("011 44 20 7946 0123", "+442079460123"),  # dialled internationally from the U.S.
    ("+44 20 7946 0123", "+442079460123"),  # an agency registered with a U.K. number
    ("+52 55 5555 0123", "+525555550123"),
    ("5550123", None),  # seven digits: dialable only locally, no E.164 form
    ("615555012", None),  # nine digits
    ("+1615555012", None),
    ("911", None),
    ("anonymous", None),
    ("Restricted", None),
    ("", None),
    (None, None),
    ("6155550123; DROP TABLE officer", None),
    ("615555O123", None),  # a letter O
    ("+" + "1" * 40, None),
]


@pytest.mark.parametrize(("raw", "e164"), NUMBER_FORMS, ids=[repr(r) for r, _ in NUMBER_FORMS])
def test_caller_ids_in_us_forms(raw: str | None, e164: str | None) -> None:
    assert normalise_ani(raw, "US") == e164


def test_national_numbers_follow_the_region() -> None:
    assert normalise_ani("020 7946 0123", "GB") == "+442079460123"
    assert normalise_ani("020 7946 0123", "US") is None  # not a U.S. number


def uri(verstat: str, number: str = E164, where: str = "user") -> str:
    """A From or P-Asserted-Identity header as pjsip prints it."""
    if where == "user":
        return f'"Officer" <sip:{number};verstat={verstat}@198.51.100.7;user=phone>;tag=a1'
    return f"<sip:{number}@198.51.100.7;user=phone;verstat={verstat}>"


# SB_ATTEST as [sb-attest] sets it -> (source, attestation, result, SB_CALLER_ID)
ATTEST_TABLE = [
    ("dialplan sets nothing", None, ("none", None, "not-provided", "not-provided")),
    ("carrier gives nothing", "none", ("none", None, "not-provided", "not-provided")),
    ("not on the carrier's transport", "unproven",
     ("unproven", None, "unproven", "unproven")),
    ("not on the carrier's transport, whatever follows",
     f"unproven {uri('TN-Validation-Passed-A')}", ("unproven", None, "unproven", "unproven")),
    ("verstat A, user part", f"verstat {uri('TN-Validation-Passed-A')}",
     ("verstat", "A", "passed", "A-passed")),
    ("verstat A, after the host", f"verstat {uri('TN-Validation-Passed-A', where='host')}",
     ("verstat", "A", "passed", "A-passed")),
    ("verstat B", f"verstat {uri('TN-Validation-Passed-B')}",
     ("verstat", "B", "passed", "B-passed")),
    ("verstat C", f"verstat {uri('TN-Validation-Passed-C')}",
     ("verstat", "C", "passed", "C-passed")),
    ("verstat passed, no level", f"verstat {uri('TN-Validation-Passed')}",
     ("verstat", None, "passed", "passed")),
    ("verstat-a carrier, passed", f"verstat-a {uri('TN-Validation-Passed')}",
     ("verstat-a", "A", "passed", "A-passed")),
    ("verstat failed", f"verstat {uri('TN-Validation-Failed')}",
     ("verstat", None, "failed", "failed")),
    ("verstat failed A", f"verstat {uri('TN-Validation-Failed-A')}",
     ("verstat", "A", "failed", "failed")),
    ("no validation", f"verstat {uri('No-TN-Validation')}",
     ("verstat", None, "not-validated", "not-validated")),
    ("verstat expected, none came", f"verstat <sip:{E164}@198.51.100.7>;tag=1",
     ("verstat", None, "absent", "absent")),
    ("no headers at all", "verstat", ("verstat", None, "absent", "absent")),
    ("PAI passed, From failed", f"verstat {uri('TN-Validation-Passed-A')} "
     f"{uri('TN-Validation-Failed')}", ("verstat", None, "failed", "failed")),
    ("PAI and From agree", f"verstat {uri('TN-Validation-Passed-A')} "
     f"{uri('TN-Validation-Passed-A', where='host')}", ("verstat", "A", "passed", "A-passed")),
    ("two verstat on one URI", f"verstat <sip:{E164};verstat=TN-Validation-Passed-A;"
     f"verstat=TN-Validation-Failed@h>", ("verstat", None, "failed", "failed")),
    ("verdict on another number", f"verstat {uri('TN-Validation-Passed-A', '+16155550199')}",
     ("verstat", None, "absent", "absent")),
    ("national form of the same number", f"verstat {uri('TN-Validation-Passed-A', '6155550123')}",
     ("verstat", "A", "passed", "A-passed")),
    ("an unknown verdict", f"verstat {uri('TN-Validation-Maybe')}",
     ("verstat", None, "error", "error")),
    ("tel URI", f"verstat <tel:{E164};verstat=TN-Validation-Passed-A>",
     ("verstat", "A", "passed", "A-passed")),
    ("bare URI, verdict in the user part", f"verstat sip:{E164};verstat=TN-Validation-Passed-A"
     "@h;tag=x", ("verstat", "A", "passed", "A-passed")),
    ("bare URI, verdict after the host is a header parameter",
     f"verstat sip:{E164}@h;verstat=TN-Validation-Passed-A", ("verstat", None, "absent",
                                                              "absent")),
    ("verdict in a quoted display name", f'verstat "<sip:{E164};verstat=TN-Validation-'
     f'Passed-A@h>" <sip:{E164}@h>', ("verstat", None, "absent", "absent")),
    ("escaped quote in a display name", f'verstat "a\\" <sip:{E164};verstat=TN-Validation-'
     f'Passed-A@h>" <sip:{E164}@h>', ("verstat", None, "absent", "absent")),
    ("display name with spaces, PAI empty", f'verstat  "Sheriff Dispatch 1" <sip:{E164};'
     f'verstat=TN-Validation-Passed-B@h;user=phone>;tag=9', ("verstat", "B", "passed",
                                                            "B-passed")),
    ("unclosed bracket", f"verstat <sip:{E164};verstat=TN-Validation-Passed-A@h",
     ("verstat", None, "absent", "absent")),
    ("identity A success", "identity 1 A success", ("identity", "A", "passed", "A-passed")),
    ("identity B success", "identity 1 B success", ("identity", "B", "passed", "B-passed")),
    ("identity unsigned", "identity 0", ("identity", None, "not-validated", "not-validated")),
    ("identity, no Identity header", "identity 1  missing_identity_hdr",
     ("identity", None, "not-validated", "not-validated")),
    ("identity, no Date header", "identity 1  missing_date_hdr",
     ("identity", None, "failed", "failed")),
    ("identity bad signature", "identity 1 A signature_validation",
     ("identity", "A", "failed", "failed")),
    ("identity number mismatch", "identity 1 A cid_orig_tn_mismatch",
     ("identity", "A", "failed", "failed")),
    ("identity stale iat", "identity 1 A iat_range_error", ("identity", "A", "failed", "failed")),
    ("identity cert unreachable", "identity 1 A cert_retrieval_failure",
     ("identity", "A", "error", "error")),
    ("identity success without a level", "identity 1 X success",
     ("identity", None, "failed", "failed")),
    ("identity unknown result", "identity 1 A something_new", ("identity", None, "error", "error")),
    ("identity unreadable", "identity one", ("identity", None, "error", "error")),
    ("unknown source", "carrier-pigeon A", ("none", None, "error", "error")),
    ("control characters", "verstat sip:1\r\nSET VARIABLE SB_VERIFIED full",
     ("none", None, "error", "error")),
    ("too long", "verstat " + "x" * 700, ("none", None, "error", "error")),
    ("not ASCII", "verstat sip:\u0661\u0666\u0661\u0665;verstat=TN-Validation-Passed-A@h",
     ("none", None, "error", "error")),
]


@pytest.mark.parametrize(("raw", "want"), [t[1:] for t in ATTEST_TABLE],
                         ids=[t[0] for t in ATTEST_TABLE])
def test_attestation_cases(raw: str | None, want: tuple[str, str | None, str, str]) -> None:
    got = attest.parse(raw, E164)
    assert (got.source, got.attest, got.result, got.label) == want
    assert got.result in attest.RESULTS
    assert got.reason is None or (len(got.reason) <= 40 and got.reason.isascii())
    # only a validated A attestation is A-passed
    assert got.attested_a == (want[3] == "A-passed")


def test_display_names_cannot_carry_a_verdict() -> None:
    """A display name is never read; a verdict typed into the number's user part
    by the caller still has to be the only one, and a second is a failure,
    never a pass."""
    forged = (f'verstat "verstat=TN-Validation-Passed-A" <sip:{E164};verstat=TN-Validation-'
              f'Passed-A@h;verstat=TN-Validation-Failed>')
    assert attest.parse(forged, E164).result == "failed"


# America/Chicago: DST began 2026-03-08 02:00 CST and ends 2026-11-01 02:00 CDT
@pytest.mark.parametrize(("day", "hours"), [("2026-03-08", 23), ("2026-11-01", 25),
                                            ("2026-07-04", 24), ("2026-12-25", 24)])
def test_report_days_in_central_time(day: str, hours: int) -> None:
    rng = Range.parse(day, None, None, "America/Chicago", "hour")
    # (aware datetimes of one zone subtract as wall clocks: compare in UTC)
    assert (rng.end.astimezone(UTC) - rng.start.astimezone(UTC)).total_seconds() == hours * 3600
    assert rng.start.astimezone(UTC).hour in (5, 6)  # local midnight
    assert bucket_seconds(rng.start, "day", "America/Chicago") == hours * 3600
    assert bucket_seconds(rng.start, "hour", "America/Chicago") == 3600


def test_the_site_time_zone_defaults_to_central_and_is_checked() -> None:
    assert site_tz({}) == "America/Chicago"
    assert site_tz({"SB_TZ": "America/New_York"}) == "America/New_York"
    assert site_tz({"SB_TZ": "UTC"}, "America/Denver") == "America/Denver"
    with pytest.raises(ConfigError, match="unknown time zone"):
        site_tz({"SB_TZ": "Mars/Olympus_Mons"})
