"""The pacing simulator (``callcenter dialer simulate``, bench/dialer.py): the dialer's pacers against a
model of agents and contacts, and the VICIdial-style yardstick they are compared with. Not part of the
running controller: nothing outside this package imports it but the CLI, the bench and the tests."""
