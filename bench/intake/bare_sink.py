"""The raw limit for the intake benchmark: aiosmtpd in its own process, same loop style as intake, that accepts every
message with 250 and discards it. `python bench/intake/bare_sink.py PORT`."""

from __future__ import annotations

import asyncio
import sys

from aiosmtpd.smtp import SMTP


class Discard:
    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: ANN001, N802
        return "250 2.0.0 OK"


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(Discard(), data_size_limit=25 * 1024 * 1024, enable_SMTPUTF8=True, loop=loop), "127.0.0.1", port
    )
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1])))
