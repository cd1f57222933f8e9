"""A real channel router for unit tests that build one feature: what it claims can be asserted."""

from __future__ import annotations

from callcenter.ari.routing import ChannelRouter


async def _nothing_in_app() -> set[str]:
    return set()


def router() -> ChannelRouter:
    return ChannelRouter(_nothing_in_app)
