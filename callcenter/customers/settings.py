"""The customers feature's settings: the ``[customers]`` section."""

from __future__ import annotations

from dataclasses import dataclass

from callcenter.settings_file import opt


@dataclass(frozen=True)
class CustomersSettings:
    # Country (ISO 3166 alpha-2) of numbers typed or imported without + or 00: "0221234567" -> +48221234567.
    default_region: str = opt("PL", pattern=r"^[A-Z]{2}$")
