"""The ceiling: a bare ASGI app that reads and parses the JSON body and returns a constant.

Same server stack as pricecast (uvicorn + uvloop + httptools); no routing, validation, model or
metrics. Nothing in Python can answer this request faster on this stack.
"""

from __future__ import annotations

import orjson

RESPONSE = orjson.dumps({"predictions": [0.0]})
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(RESPONSE)).encode())]


async def app(scope, receive, send):  # noqa: ANN001, ANN201 - a bare ASGI callable
    if scope["type"] != "http":
        return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    orjson.loads(body)
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": RESPONSE})
