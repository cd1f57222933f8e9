"""The FTPS feature's settings: the ``[ftps]`` section."""

from __future__ import annotations

from dataclasses import dataclass

from callcenter.settings_file import opt


@dataclass(frozen=True)
class FtpsSettings:
    enabled: bool = opt(True)
    bind: str = opt("127.0.0.1")
    port: int = opt(2121, lo=1, hi=65535)
    # Data connections use ports from this range ("first-last").
    passive_ports: str = opt("30000-30049", pattern=r"^[0-9]{1,5}-[0-9]{1,5}$")
    # PEM certificate and key. Empty: one is generated on first run under <var_dir>/ftps/.
    certificate: str = opt("")
    private_key: str = opt("")
    # The address given to clients for passive connections when it differs from bind (behind NAT).
    masquerade_address: str = opt("")
