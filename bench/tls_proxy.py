#!/usr/bin/env python3
"""A TLS terminator for the benchmark's HTTPS rows: accepts TLS on 127.0.0.1 and forwards the
plain bytes to the S3 server (Garage on loopback), both ways, one backend connection per client
connection.

    tls_proxy.py --cert server.pem --key server.key --listen PORT --backend HOST:PORT

Prints `ready` on stdout once it listens. Built to stay out of the way of what it measures:
asyncio protocols (no stream layer), 1 MiB socket reads, large write buffers with flow control
in both directions, no ALPN (HTTP/1.1, as Garage speaks it). Its own CPU time is read from
/proc/<pid>/stat by the benchmark.
"""
import argparse
import asyncio
import socket
import ssl
import sys

HIGH_WATER = 8 * 1024 * 1024
LOW_WATER = 2 * 1024 * 1024
READ_SIZE = 1024 * 1024
NEGOTIATED = set()


class Pipe(asyncio.BufferedProtocol):
    """One side of a proxied connection: what it reads is written to `peer`'s transport."""

    def __init__(self, copy):
        # `copy`: the peer keeps references to written data (an SSL transport queues them);
        # a plain socket transport copies what it cannot send at once, so needs no copy here.
        self.copy = copy
        self.transport = None
        self.peer = None
        self.pending = []  # written before the peer is connected
        self.buf = bytearray(READ_SIZE)
        self.view = memoryview(self.buf)
        self.closed = False

    def connection_made(self, transport):
        self.transport = transport
        tls = transport.get_extra_info("ssl_object")
        if tls is not None:
            # Each protocol and cipher once on stderr: the benchmark reports what was negotiated.
            seen = (tls.version(), tls.cipher()[0])
            if seen not in NEGOTIATED:
                NEGOTIATED.add(seen)
                print(f"negotiated {seen[0]} {seen[1]}", file=sys.stderr, flush=True)
        transport.set_write_buffer_limits(high=HIGH_WATER, low=LOW_WATER)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def get_buffer(self, sizehint):
        return self.view

    def buffer_updated(self, nbytes):
        data = self.view[:nbytes]
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.write(bytes(data) if self.copy else data)
        else:
            self.pending.append(bytes(data))

    def attach(self, peer):
        self.peer = peer
        for data in self.pending:
            peer.transport.write(data)
        self.pending = []

    # Flow control: when the peer cannot take more, stop reading from this side.
    def pause_writing(self):
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.pause_reading()

    def resume_writing(self):
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.resume_reading()

    def eof_received(self):
        if self.peer is not None and self.peer.transport is not None:
            if self.peer.transport.can_write_eof():
                self.peer.transport.write_eof()
                return True
            self.peer.transport.close()
        return False

    def connection_lost(self, exc):
        self.closed = True
        if self.peer is not None and self.peer.transport is not None and not self.peer.closed:
            self.peer.transport.close()


async def serve(args):
    loop = asyncio.get_running_loop()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    host, port = args.backend.rsplit(":", 1)

    def client_side():
        front = Pipe(copy=False)

        async def connect():
            try:
                _, back = await loop.create_connection(lambda: Pipe(copy=True), host, int(port))
            except OSError:
                if front.transport is not None:
                    front.transport.close()
                return
            back.peer = front
            front.attach(back)
            if front.closed:
                back.transport.close()

        loop.create_task(connect())
        return front

    server = await loop.create_server(
        client_side, "127.0.0.1", args.listen, ssl=ctx, backlog=512,
        ssl_handshake_timeout=30,
    )
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--listen", type=int, required=True)
    ap.add_argument("--backend", required=True)
    args = ap.parse_args()
    try:
        asyncio.run(serve(args))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
