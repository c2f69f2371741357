"""A node started locked (the app's embedded node, `percolab` with an encrypted key and no
passphrase at hand: docs/keys.md) serves reads at once and waits for the member key's
passphrase over the control socket: the `unlock` RPC, which the TUI's unlock screen sends.

Mixed into `Service` (node/service/api.py) before `IdentityMethods`: while the key is locked,
every signing method answers `locked` instead of asking for a passphrase nobody can type.
Wrong passphrases are counted: after MAX_UNLOCK_FAILURES within UNLOCK_FAILURE_WINDOW_S,
`unlock` refuses (`too_many_attempts`) for UNLOCK_LOCKOUT_S without trying.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Mapping
from typing import Any, Final

from node.keys import member as member_keys
from node.keys import passphrase
from node.keys.keyfile import KeyFileError, KeyRing, WrongPassphrase
from node.keys.member import KeyState
from node.service.errors import ServiceError
from node.service.identity_ops import RING_LOCK, IdentityMethods

log = logging.getLogger(__name__)

MAX_UNLOCK_FAILURES: Final = 5
UNLOCK_FAILURE_WINDOW_S: Final = 60.0
UNLOCK_LOCKOUT_S: Final = 30.0
# What `status` says about a new key when there is no identity yet (`new_key`).
NEW_KEY_PASSPHRASE: Final = "passphrase"  # the node holds one: `init` uses it
NEW_KEY_UNENCRYPTED: Final = "unencrypted"  # config.toml says so
NEW_KEY_ASK: Final = "ask"  # `init` needs `passphrase` (or `unencrypted: true`)

# One unlock attempt at a time (each costs a KDF run): parallel guesses queue, and are
# counted one by one.
_ATTEMPT_LOCK = threading.Lock()
_clock = time.monotonic  # tests replace it


class UnlockAttempts:
    """Recent wrong passphrases, and the end of the current refusal."""

    def __init__(self) -> None:
        self.failures: deque[float] = deque()
        self.refused_until = 0.0

    def wait_s(self, now: float) -> float:
        """Seconds `unlock` still refuses to try (0: it may)."""
        return max(0.0, self.refused_until - now)

    def failed(self, now: float) -> None:
        self.failures.append(now)
        while self.failures and self.failures[0] <= now - UNLOCK_FAILURE_WINDOW_S:
            self.failures.popleft()
        if len(self.failures) >= MAX_UNLOCK_FAILURES:
            self.refused_until = now + UNLOCK_LOCKOUT_S
            self.failures.clear()

    def succeeded(self) -> None:
        self.failures.clear()
        self.refused_until = 0.0


class UnlockMethods(IdentityMethods):
    """`unlock`, the `locked` state in `status`, and signing refused while locked."""

    _unlock_attempts: UnlockAttempts | None = None

    def is_locked(self) -> bool:
        """The member key is encrypted and not unlocked in this process, and no passphrase
        can be had without the `unlock` RPC (none given at start, no terminal to ask on)."""
        if self.ring is not None or self.public is None:
            return False
        if member_keys.key_state(self.key_dir) is not KeyState.ENCRYPTED:
            return False
        try:
            return passphrase.non_interactive() is None and not passphrase.can_prompt()
        except KeyFileError:  # an unreadable passphrase file: signing says so
            return False

    def key_status(self) -> dict[str, Any]:
        """For `status`: `locked` (with an identity), or how `init` would protect a new key."""
        if self.public is not None:
            return {"locked": self.is_locked()}
        try:
            given = passphrase.non_interactive() is not None
        except KeyFileError:
            given = False
        if given:
            return {"new_key": NEW_KEY_PASSPHRASE}
        if member_keys.unencrypted_configured(self.data_dir):
            return {"new_key": NEW_KEY_UNENCRYPTED}
        return {"new_key": NEW_KEY_ASK}

    def _require_ring(self) -> KeyRing:
        # Another member's ring opens only by seat_open, never with the node's passphrase.
        if self.ring is None and self.key_dir != self.data_dir:
            raise ServiceError("locked", "this member is not signed in here (`seat_open`)")
        if self.is_locked():
            raise ServiceError(
                "locked",
                f"the member key {member_keys.ring_path(self.key_dir)} is locked: it needs a "
                "passphrase (the app asks for it; RPC `unlock`)",
            )
        return super()._require_ring()

    def m_unlock(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Unlock the member key with `passphrase`; `{"locked": false}` (also when it was not
        locked: an unencrypted key, or already unlocked)."""
        text = params.get("passphrase")
        if not isinstance(text, str) or not text:
            raise ServiceError("bad_request", "parameter 'passphrase' must be a non-empty string")
        if self.public is None:
            raise ServiceError("no_identity", "no identity here yet: nothing to unlock")
        with _ATTEMPT_LOCK:
            attempts = self._unlock_attempts
            if attempts is None:
                attempts = self._unlock_attempts = UnlockAttempts()
            wait = attempts.wait_s(_clock())
            if wait > 0:
                raise ServiceError("too_many_attempts", "too many wrong passphrases: try "
                                   f"again in {math.ceil(wait)} s")  # fmt: skip
            if not self.is_locked():
                return {"locked": False}
            try:
                ring = member_keys.unlock_with(self.key_dir, text)
            except WrongPassphrase:
                attempts.failed(_clock())
                log.warning("unlock: wrong passphrase")
                raise ServiceError("wrong_passphrase", "wrong passphrase") from None
            attempts.succeeded()
            with RING_LOCK:
                if self.ring is None:
                    self.ring = ring
        log.info("member key unlocked")
        return {"locked": False}
