"""Officer PINs: argon2id of HMAC-SHA256(pepper, PIN).

The pepper is a server-side secret kept outside the database (a file or the
environment), so a copy of the database alone cannot be brute-forced offline:
without the pepper no guess can even be tested.  argon2id (argon2-cffi, the
maintained binding of the reference implementation) makes each guess costly
for whoever has both.  PINs never appear in a log or an exception message.

Parameters (defaults, see docs/security.md, "PIN hashing" for the measured cost): the
OWASP minimum for argon2id, m=19 MiB, t=2, p=1.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_PIN = 6
MAX_PIN = 12


class PinPolicyError(ValueError):
    """A new PIN is not acceptable (the message never contains the PIN)."""


def check_new_pin(pin: str) -> None:
    if not (pin.isascii() and pin.isdigit()):
        raise PinPolicyError("a PIN is digits only")
    if not MIN_PIN <= len(pin) <= MAX_PIN:
        raise PinPolicyError(f"a PIN has {MIN_PIN} to {MAX_PIN} digits")
    if len(set(pin)) == 1:
        raise PinPolicyError("a PIN may not repeat one digit")
    steps = {int(b) - int(a) for a, b in itertools.pairwise(pin)}
    if steps in ({1}, {-1}):
        raise PinPolicyError("a PIN may not be a run like 123456")


MIN_PASSWORD = 12
MAX_PASSWORD = 128


def check_new_password(password: str) -> None:
    """An agent's password (NIST SP 800-63B 5.1.1: length, not composition rules)."""
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise PinPolicyError(f"a password has {MIN_PASSWORD} to {MAX_PASSWORD} characters")
    if len(set(password)) < 4:
        raise PinPolicyError("a password needs more than a few different characters")


class PinHasher:
    def __init__(self, pepper: bytes, *, time_cost: int = 2, memory_kib: int = 19456,
                 parallelism: int = 1) -> None:
        if len(pepper) < 32:
            raise ValueError("the pepper must be at least 32 bytes")
        self._pepper = pepper
        self._ph = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib,
                                  parallelism=parallelism, hash_len=32, salt_len=16,
                                  type=Type.ID)
        self._dummy: str | None = None

    def __repr__(self) -> str:
        return f"PinHasher({self.parameters})"

    @property
    def parameters(self) -> str:
        p = self._ph
        return f"argon2id m={p.memory_cost}KiB t={p.time_cost} p={p.parallelism}"

    def _peppered(self, pin: str) -> bytes:
        return hmac.new(self._pepper, pin.encode(), hashlib.sha256).digest()

    def hash(self, pin: str) -> str:
        check_new_pin(pin)
        return self._ph.hash(self._peppered(pin))

    def hash_password(self, password: str) -> str:
        """An agent's password, stored like a PIN (argon2id of the peppered text)."""
        check_new_password(password)
        return self._ph.hash(self._peppered(password))

    def verify_and_rehash(self, pin_hash: str | None, pin: str) -> tuple[bool, str | None]:
        """(right, new hash): for a right PIN whose hash was made with other
        parameters, the PIN hashed again with the current ones."""
        if not self.verify(pin_hash, pin):
            return False, None
        assert pin_hash is not None
        try:
            stale = self._ph.check_needs_rehash(pin_hash)
        except (InvalidHashError, ValueError):
            stale = False
        return True, (self._ph.hash(self._peppered(pin)) if stale else None)

    def verify(self, pin_hash: str | None, pin: str) -> bool:
        """True only for the right PIN against a well-formed hash.  With no hash,
        the same work is done against a dummy and the answer is False."""
        try:
            if pin_hash is None:
                # A real hash of nothing anyone knows: with no officer, or a locked
                # one, the answer takes as long as a real check.
                if self._dummy is None:
                    self._dummy = self._ph.hash(b"\x00" * 32)
                self._ph.verify(self._dummy, self._peppered(pin))
                return False
            return self._ph.verify(pin_hash, self._peppered(pin))
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
