"""The recorded runs written by the real listener into a database of their own,
once per module that asks for them (the KPI, report and aggregate tests)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from switchboard.ami_listener.captures import Capture, concat, segment_from
from tests.helpers import ingest

RUNS = ["a_answered_ts", "b_abandon_ts", "d_queue_timeout_ts", "f_burst_50_calls_ts"]


@pytest.fixture(scope="module")
def recorded(pg_cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    from tests.conftest import fresh_database
    url = fresh_database(pg_cluster)
    segment = concat(segment_from(Capture.load(n)) for n in RUNS)
    asyncio.run(ingest(url, tmp_path_factory.mktemp("kpi"), [segment], node="pbx-a"))
    return url
