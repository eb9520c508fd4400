"""Follow `WS /v1/subscribe`: every Detections of the chosen streams, as dicts."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable
from typing import Any

from websockets.asyncio.client import connect

from client.credentials import auth_headers


async def subscribe(
    gateway_url: str,
    streams: Iterable[str] | None = None,
    *,
    include_notices: bool = False,
    token: str = "",
) -> AsyncIterator[dict[str, Any]]:
    """Yield detections messages (and, with include_notices, hello/dropped notices).

    ``token``: sent as ``Authorization: Bearer``; empty: found (client.credentials).
    """
    names = "*" if streams is None else ",".join(streams)
    url = f"{gateway_url.rstrip('/')}/v1/subscribe?streams={names}"
    async with connect(
        url, max_size=2**22, compression=None, additional_headers=auth_headers(token)
    ) as ws:
        async for raw in ws:
            message: dict[str, Any] = json.loads(raw)
            if message.get("type") == "detections" or include_notices:
                yield message
