"""The shared login throttle (callcenter/users/throttle.py) on a fake clock: growing delays per account
and per address, no permanent lock-out, bounded memory, thread safety."""

from __future__ import annotations

import threading

import pytest

from callcenter.users.throttle import (
    ACCOUNT_MAX_DELAY,
    ADDRESS_MAX_DELAY,
    FORGET_AFTER,
    LoginThrottle,
    address_key,
)


class Clock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def throttle(clock: Clock) -> LoginThrottle:
    return LoginThrottle(clock=clock)


def _delays(throttle: LoginThrottle, address: str, account: str, failures: int) -> list[float]:
    """The wait after each of ``failures`` failures made as soon as allowed."""
    clock: Clock = throttle._clock  # type: ignore[assignment]
    waits = []
    for _ in range(failures):
        clock.now += throttle.wait_for(address, account)
        assert throttle.wait_for(address, account) == 0
        throttle.failed(address, account)
        waits.append(throttle.wait_for(address, account))
    return waits


def test_account_delays_double_after_three_free_failures_up_to_a_minute(throttle: LoginThrottle) -> None:
    # From a new address each time: only the account's count matters.
    waits = []
    for n in range(10):
        address = f"192.0.2.{n}"
        throttle._clock.now += throttle.wait_for(address, "admin")  # type: ignore[attr-defined]
        throttle.failed(address, "admin")
        waits.append(throttle.wait_for(f"198.51.100.{n}", "admin"))
    assert waits == [0, 0, 0, 1, 2, 4, 8, 16, 32, 60]


def test_address_delays_double_after_ten_free_failures_up_to_five_minutes(throttle: LoginThrottle) -> None:
    waits = []
    for n in range(20):
        waits.append(throttle.wait_for("192.0.2.7", f"user{n}"))
        throttle._clock.now += waits[-1]  # type: ignore[attr-defined]
        throttle.failed("192.0.2.7", f"user{n}")
    waits.append(throttle.wait_for("192.0.2.7", "someone-else"))
    assert waits == [0] * 11 + [1, 2, 4, 8, 16, 32, 64, 128, 256, 300]
    # Spraying one password over many accounts from one address is now one guess per 5 minutes...
    assert _delays(throttle, "192.0.2.7", "user99", 3) == [ADDRESS_MAX_DELAY] * 3
    # ...while those accounts, from elsewhere, are not slowed (one failure each).
    assert throttle.wait_for("198.51.100.1", "user3") == 0


def test_a_refused_attempt_does_not_extend_the_delay(throttle: LoginThrottle, clock: Clock) -> None:
    assert _delays(throttle, "192.0.2.1", "alice", 5) == [0, 0, 0, 1, 2]
    clock.now += 1.5
    assert throttle.wait_for("192.0.2.1", "alice") == 0.5  # refused: the caller does not count it
    clock.now += 0.5
    assert throttle.wait_for("192.0.2.1", "alice") == 0


def _owner_waits(clock: Clock, period: float, arrival: float) -> float:
    """How long alice (from the office) waits for her right password to be checked, arriving
    ``arrival`` seconds into an attack on her account from one address that tries every ``period``
    seconds. Ties go to the attacker: at the instant a delay ends, their guess is checked first."""
    throttle = LoginThrottle(clock=clock)
    start = clock.now
    next_guess = start

    def attacker_until(moment: float) -> None:
        nonlocal next_guess
        while next_guess <= moment:
            clock.now = next_guess
            if throttle.wait_for("203.0.113.66", "alice") == 0:  # refused attempts are not counted
                throttle.failed("203.0.113.66", "alice")
            next_guess += period

    attacker_until(start + arrival)
    clock.now = start + arrival
    waited = 0.0
    while (wait := throttle.wait_for("192.0.2.10", "alice")) > 0:
        waited += wait
        attacker_until(clock.now + wait)
        clock.now = start + arrival + waited
    throttle.succeeded("192.0.2.10", "alice")
    return waited


def test_the_right_password_gets_in_within_a_cap_while_an_attacker_guesses_slowly(clock: Clock) -> None:
    # Slower than the account's cap (the old lock-out fell to five guesses every five minutes).
    for arrival in range(0, 3 * 3600, 97):
        assert _owner_waits(clock, 90, arrival) <= ACCOUNT_MAX_DELAY, arrival


def test_an_attacker_polling_from_one_address_soon_leaves_the_owner_in(clock: Clock) -> None:
    # Polling every 2 s wins the race at each delay's end at first; once the address's own delay has
    # grown past the account's (8 minutes in), the owner waits at most the account's cap.
    for arrival in range(15 * 60, 3 * 3600, 61):
        assert _owner_waits(clock, 2, arrival) <= ACCOUNT_MAX_DELAY, arrival


def test_guesses_from_many_addresses_leave_gaps_for_the_owner(clock: Clock) -> None:
    # A slow attacker spread over many addresses (one guess every 2 minutes from a new address).
    throttle = LoginThrottle(clock=clock)
    start = clock.now
    for n in range(30):
        clock.now = start + 120 * n
        assert throttle.wait_for(f"203.0.113.{n}", "alice") == 0
        throttle.failed(f"203.0.113.{n}", "alice")
    assert throttle.wait_for("192.0.2.10", "alice") == ACCOUNT_MAX_DELAY
    clock.now += ACCOUNT_MAX_DELAY
    assert throttle.wait_for("192.0.2.10", "alice") == 0


def test_success_clears_the_account_not_the_address(throttle: LoginThrottle, clock: Clock) -> None:
    for _ in range(12):
        clock.now += throttle.wait_for("192.0.2.1", "bob")
        throttle.failed("192.0.2.1", "bob")
    clock.now += throttle.wait_for("192.0.2.1", "bob")
    throttle.succeeded("192.0.2.1", "bob")
    assert throttle.wait_for("198.51.100.1", "bob") == 0  # the account starts afresh
    throttle.failed("192.0.2.1", "bob")
    assert throttle.wait_for("198.51.100.1", "bob") == 0  # one failure is free again
    assert throttle.wait_for("192.0.2.1", "carol") == 4  # the address still has its 13 failures


def test_failures_are_forgotten_after_a_quiet_quarter_of_an_hour(throttle: LoginThrottle, clock: Clock) -> None:
    assert _delays(throttle, "192.0.2.1", "dave", 6)[-1] == 4
    clock.now += FORGET_AFTER - 1
    throttle.failed("192.0.2.1", "dave")  # not yet forgotten: the 7th failure
    assert throttle.wait_for("192.0.2.1", "dave") == 8
    clock.now += FORGET_AFTER
    assert throttle.wait_for("192.0.2.1", "dave") == 0
    assert throttle.tracked() == (0, 0)
    throttle.failed("192.0.2.1", "dave")
    assert throttle.wait_for("192.0.2.1", "dave") == 0  # counting from 1 again


def test_memory_stays_bounded_and_delayed_entries_survive_a_spray(clock: Clock) -> None:
    throttle = LoginThrottle(clock=clock, max_entries=100)
    for _ in range(8):
        clock.now += throttle.wait_for("192.0.2.1", "admin")
        throttle.failed("192.0.2.1", "admin")
    assert throttle.wait_for("192.0.2.2", "admin") == 16
    # Thousands of names from thousands of addresses: the tables stay small, admin's delay stays.
    for n in range(5000):
        throttle.failed(f"10.{n // 65536}.{n // 256 % 256}.{n % 256}", f"spray{n}")
        assert max(throttle.tracked()) <= 100
    assert throttle.wait_for("192.0.2.2", "admin") == 16


def test_ipv6_is_counted_per_64_and_mapped_ipv4_as_ipv4() -> None:
    assert address_key("2001:db8:1:2::1") == address_key("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert address_key("2001:db8:1:3::1") != address_key("2001:db8:1:2::1")
    assert address_key("::ffff:192.0.2.1") == address_key("192.0.2.1") == "192.0.2.1"
    assert address_key("not an address") == "not an address"
    throttle = LoginThrottle(clock=lambda: 0.0, address_free_failures=1)
    throttle.failed("2001:db8::1", "a")
    throttle.failed("2001:db8::2", "b")
    assert throttle.wait_for("2001:db8::3", "c") == 1


def test_counts_are_exact_under_threads(clock: Clock) -> None:
    # 8 threads x 500 failures: exactly 4000, or the 4000th would not bring the first delay.
    throttle = LoginThrottle(clock=clock, account_free_failures=3999, address_free_failures=10**6,
                             first_delay=1, account_max_delay=60)

    def hammer() -> None:
        for _ in range(500):
            throttle.failed("192.0.2.1", "shared")
            throttle.wait_for("192.0.2.1", "shared")

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert throttle.wait_for("192.0.2.1", "shared") == 1


def test_nonsense_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        LoginThrottle(account_max_delay=FORGET_AFTER)
    with pytest.raises(ValueError):
        LoginThrottle(first_delay=0)
    with pytest.raises(ValueError):
        LoginThrottle(max_entries=0)
