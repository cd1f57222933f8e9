"""Slows down password guessing, for the panel and FTPS alike (docs/security.md, "Login throttling").

Failures are counted twice: per source address and per account. Each count gets a few free failures,
then every further failure makes the next attempt wait, counted from that failure:

======================  ==============  ==============================  ==========
count                   free failures   delay after the next failures   cap
======================  ==============  ==============================  ==========
per account             3               1 s, 2 s, 4 s, ... (doubling)   60 s
per address             10              1 s, 2 s, 4 s, ... (doubling)   300 s
======================  ==============  ==============================  ==========

An attempt must wait for the longer of the two delays. An attempt made while a delay runs is refused
without checking the password and is not counted, so it does not extend the delay: whoever has the
right password gets in at most a cap after the last checked failure. There is no lock-out that an
attacker could keep in place by guessing every few minutes, yet guessing from one address, at one
account or spraying a password over many, settles at one guess every 5 minutes (an office behind
one address gets ten free failures), and guessing one account from many addresses at one a minute.

A success clears the account's count, not the address's: an attacker who also owns an account
cannot wipe their address's record by logging in to it. A count is forgotten 15 minutes after its
last failure. IPv6 addresses are counted per /64 (what one subscriber usually holds); IPv4-mapped
IPv6 addresses as the IPv4 address.

Memory is bounded (``max_entries`` per count). When a count table is full, forgotten entries go
first, then those still within their free failures (dropping one gives back at most those few free
tries), and only then the oldest delayed ones.

Thread-safe: one lock, held for a few dictionary operations, never while a password is checked
(the panel calls it on the asyncio loop, FTPS from its own thread). In memory only: a restart
forgets everything.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

ACCOUNT_FREE_FAILURES = 3
ADDRESS_FREE_FAILURES = 10
FIRST_DELAY = 1.0
ACCOUNT_MAX_DELAY = 60.0
ADDRESS_MAX_DELAY = 300.0
FORGET_AFTER = 15 * 60.0
MAX_ENTRIES = 10_000
# 2**64 s is far beyond any cap: keeps the float arithmetic finite for absurd counts.
_MAX_DOUBLINGS = 64


@dataclass
class _Entry:
    failures: int
    last: float


class _Counts:
    """Failures per key, ordered by their last failure (oldest first). Not locked: the throttle is."""

    def __init__(self, free: int, first_delay: float, max_delay: float, forget_after: float,
                 max_entries: int) -> None:
        self.free = free
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.forget_after = forget_after
        self.max_entries = max_entries
        self.entries: OrderedDict[str, _Entry] = OrderedDict()

    def delay(self, failures: int) -> float:
        extra = failures - self.free
        if extra <= 0:
            return 0.0
        return min(self.max_delay, self.first_delay * 2.0 ** min(extra - 1, _MAX_DOUBLINGS))

    def wait(self, key: str, now: float) -> float:
        entry = self.entries.get(key)
        if entry is None:
            return 0.0
        if now - entry.last >= self.forget_after:
            del self.entries[key]
            return 0.0
        return max(0.0, entry.last + self.delay(entry.failures) - now)

    def fail(self, key: str, now: float) -> None:
        entry = self.entries.get(key)
        if entry is None or now - entry.last >= self.forget_after:
            entry = _Entry(0, now)
            self.entries[key] = entry
        entry.failures += 1
        entry.last = max(entry.last, now)
        self.entries.move_to_end(key)
        if len(self.entries) > self.max_entries:
            self._shrink(now, keep=key)

    def clear(self, key: str) -> None:
        self.entries.pop(key, None)

    def _shrink(self, now: float, keep: str) -> None:
        # Down to 90% at once, so that a spray of new keys does not scan the table on every failure.
        target = self.max_entries * 9 // 10
        entries = self.entries
        while entries:
            key, entry = next(iter(entries.items()))
            if now - entry.last < self.forget_after:
                break
            del entries[key]
        for delaying_too in (False, True):
            if len(entries) <= target:
                return
            excess = len(entries) - target
            doomed = [key for key, entry in entries.items()
                      if key != keep and (delaying_too or entry.failures <= self.free)][:excess]
            for key in doomed:
                del entries[key]


def address_key(address: str) -> str:
    """The key an address is counted under: the address itself, an IPv6 one's /64."""
    try:
        ip = ipaddress.ip_address(address.strip().strip("[]").split("%", 1)[0])
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class LoginThrottle:
    """Growing delays after failed logins, per source address and per account (module docstring).

    ``account`` is the caller's normalised account name (``users.services.account_key``); the
    throttle does not change it. Typical use::

        wait = throttle.wait_for(address, account)
        if wait:
            refuse, saying to wait ``ceil(wait)`` seconds; do not check the password, do not count it
        elif password is right:
            throttle.succeeded(address, account)
        else:
            throttle.failed(address, account)
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic,
                 account_free_failures: int = ACCOUNT_FREE_FAILURES,
                 address_free_failures: int = ADDRESS_FREE_FAILURES,
                 first_delay: float = FIRST_DELAY,
                 account_max_delay: float = ACCOUNT_MAX_DELAY,
                 address_max_delay: float = ADDRESS_MAX_DELAY,
                 forget_after: float = FORGET_AFTER,
                 max_entries: int = MAX_ENTRIES) -> None:
        """``clock``: monotonic seconds (tests pass a fake one). The free failures are how many
        failures in a row cost nothing; ``first_delay`` is the delay after the first failure beyond
        them, doubling with each further one up to the cap; a count is forgotten ``forget_after``
        seconds after its last failure (it must outlast the caps, or a delay would end by being
        forgotten rather than by running out); ``max_entries`` bounds each count table."""
        if min(account_free_failures, address_free_failures) < 0 or first_delay <= 0 or max_entries < 1:
            raise ValueError("free failures must be >= 0, first_delay > 0 and max_entries >= 1")
        if not first_delay <= min(account_max_delay, address_max_delay) <= max(account_max_delay,
                                                                                address_max_delay) < forget_after:
            raise ValueError("need first_delay <= each cap < forget_after")
        self._clock = clock
        self._lock = threading.Lock()
        self._accounts = _Counts(account_free_failures, first_delay, account_max_delay, forget_after, max_entries)
        self._addresses = _Counts(address_free_failures, first_delay, address_max_delay, forget_after, max_entries)

    def wait_for(self, address: str, account: str) -> float:
        """Seconds before this attempt may be checked; 0.0 = go ahead."""
        address = address_key(address)
        with self._lock:
            now = self._clock()
            return max(self._accounts.wait(account, now), self._addresses.wait(address, now))

    def failed(self, address: str, account: str) -> None:
        """A checked attempt with a wrong password (or unknown account): counts for both."""
        address = address_key(address)
        with self._lock:
            now = self._clock()
            self._accounts.fail(account, now)
            self._addresses.fail(address, now)

    def succeeded(self, address: str, account: str) -> None:
        """Clears the account's count, not the address's."""
        with self._lock:
            self._accounts.clear(account)

    def tracked(self) -> tuple[int, int]:
        """(accounts, addresses) currently counted: for tests and diagnostics."""
        with self._lock:
            return len(self._accounts.entries), len(self._addresses.entries)
