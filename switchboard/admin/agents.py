"""Agents' accounts and the site's dispositions (``switchboard agent ...``,
``switchboard disposition ...``, run as the database owner): each change is an
audit row; a password is stored like a PIN and never shown."""

from __future__ import annotations

from typing import Any, TextIO

import asyncpg

from switchboard.admin.ops import OpsError, Q, read_secret
from switchboard.agi.pins import PinHasher, PinPolicyError, check_new_password
from switchboard.auditlog import append_ops_row

ROLES = ("agent", "supervisor")


async def agent_add(conn: Any, login: str, name: str, interface: str, role: str) -> None:
    if role not in ROLES:
        raise OpsError(f"a role is {' or '.join(ROLES)}")
    async with conn.transaction():
        try:
            await conn.fetchval(Q["agent_add"], login, name, interface, role)
        except asyncpg.UniqueViolationError as exc:
            raise OpsError(f"agent {login} or phone {interface} exists already") from exc
        except asyncpg.CheckViolationError as exc:
            raise OpsError("a login is 2-32 lower-case letters, digits, '.', '_' or '-' "
                           "starting with a letter; a phone is PJSIP/NAME") from exc
        await append_ops_row(conn, None, None, "ops-agent-add",
                             detail=f"{login} {interface} {role}")


async def agent_set_password(conn: Any, hasher: PinHasher, login: str, password: str) -> None:
    try:
        password_hash = hasher.hash_password(password)
    except PinPolicyError as exc:
        raise OpsError(str(exc)) from exc
    async with conn.transaction():
        if await conn.fetchval(Q["agent_set_password"], login, password_hash) is None:
            raise OpsError(f"no agent {login}")
        await append_ops_row(conn, None, None, "ops-agent-password", detail=login)


async def agent_disable(conn: Any, login: str) -> None:
    async with conn.transaction():
        if await conn.fetchval(Q["agent_disable"], login) is None:
            raise OpsError(f"no enabled agent {login}")
        await append_ops_row(conn, None, None, "ops-agent-disable", detail=login)


async def agent_list(conn: Any) -> list[Any]:
    rows: list[Any] = await conn.fetch(Q["agent_list"])
    return rows


async def disposition_set(conn: Any, code: str, label: str, sort: int) -> None:
    async with conn.transaction():
        try:
            await conn.fetchval(Q["disposition_set"], code, label, sort)
        except asyncpg.CheckViolationError as exc:
            raise OpsError("a code is 2-32 lower-case letters, digits or '-' starting with "
                           "a letter; a label 1-80 characters") from exc
        await append_ops_row(conn, None, None, "ops-disposition-set", detail=code)


async def disposition_retire(conn: Any, code: str) -> None:
    async with conn.transaction():
        if await conn.fetchval(Q["disposition_retire"], code) is None:
            raise OpsError(f"no disposition {code} in use")
        await append_ops_row(conn, None, None, "ops-disposition-retire", detail=code)


def read_password(stream: TextIO | None = None) -> str:
    return read_secret(stream, "password", "at least 12 characters", check_new_password)
