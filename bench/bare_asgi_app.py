"""The bare ceiling for bench_api.py: an ASGI callable that reads the body and answers a
constant, with no framework at all (issue "Serving at the Python limit").

Served by the same gunicorn command as the real app (`gunicorn -c app/gunicorn.conf.py
bench.bare_asgi_app:app`): the most requests per second Python serves on these cores.
"""

from typing import Any

from bench.ceiling_app import BODY

HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":  # startup and shutdown: nothing to do
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    more = True
    while more:  # read the whole body, as any real endpoint must
        more = (await receive()).get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
