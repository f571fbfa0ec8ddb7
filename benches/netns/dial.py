"""First byte through Python asyncio's open_connection with Happy Eyeballs
at RFC 8305's recommended 250 ms (without it, asyncio tries addresses one
after another and waits out the kernel's connect timeout on a blackhole).
Used by first-byte.sh as the Python peer; it sends one HTTP/1.0 request and
prints the reply."""

import asyncio
import sys


async def main(host: str, port: int) -> None:
    reader, writer = await asyncio.open_connection(host, port, happy_eyeballs_delay=0.25)
    writer.write(b"GET / HTTP/1.0\r\n\r\n")
    sys.stdout.buffer.write(await reader.read())


asyncio.run(main(sys.argv[1], int(sys.argv[2])))
