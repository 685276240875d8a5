#!/usr/bin/env python3
"""A TCP proxy that adds latency: bench/latency.sh puts one in front of every fleet host.

This machine's kernel has no sch_netem, so `tc qdisc ... netem delay` cannot slow loopback
down. Instead each listener here forwards every connection to its target, and delivers every
chunk it reads, in each direction, DELAY ms after it arrived (order kept, no bandwidth cap):
the round trip through the proxy grows by 2 x DELAY. A chunk is delayed from the moment it was
read, not queued behind the previous chunk's delay, so a stream of chunks is shifted in time,
not slowed down. End of stream (FIN) is forwarded after the same delay (half-close), so a
client that closes its side still gets the server's last bytes.

Usage:
  latency_proxy.py --delay MS [--listen ADDR] [--target ADDR] --map FILE
      FILE: lines "NAME TARGET_PORT"; each gets a listener on ADDR:0 (a free port from the
      kernel). Once every listener is bound it writes "NAME LISTEN_PORT" lines to FILE.ports
      and prints "ready" on stdout. On SIGTERM/SIGINT it prints a line of counters on stderr.
  latency_proxy.py --selftest [--delay MS] [--pings N]
      Measures the round trip of a 64-byte ping-pong over TCP to a local echo server, direct
      and through a proxy with that delay, and prints both medians (ms).

Standard library only (asyncio); one process, one thread.
"""

import argparse
import asyncio
import os
import signal
import socket
import statistics
import sys
import time

CHUNK = 65536


class Stats:
    """Counters printed on exit: what went through, and how late the delivery ran."""

    def __init__(self):
        self.connections = 0
        self.failed_connects = 0
        self.bytes = 0
        self.chunks = 0
        self.max_late_ms = 0.0  # how far past its due time a chunk was written, worst case
        self.sum_late_ms = 0.0  # ... summed over the deliveries (chunks and ends of stream)
        self.deliveries = 0


STATS = Stats()


def nodelay(writer):
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass


async def pump(reader, writer, delay):
    """Copies reader to writer, each chunk DELAY seconds after it was read, in order."""
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue()

    async def read_side():
        try:
            while True:
                data = await reader.read(CHUNK)
                queue.put_nowait((loop.time() + delay, data))
                if not data:
                    return
        except (ConnectionError, OSError):
            queue.put_nowait((loop.time() + delay, None))  # abort: reset the other side

    async def write_side():
        while True:
            due, data = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            # how late this chunk goes out (a busy loop or machine delays it past its due time)
            late = (loop.time() - due) * 1000
            STATS.max_late_ms = max(STATS.max_late_ms, late)
            STATS.sum_late_ms += late
            STATS.deliveries += 1
            if data is None:
                writer.transport.abort()
                return
            if not data:
                if writer.can_write_eof():
                    writer.write_eof()
                return
            writer.write(data)
            STATS.bytes += len(data)
            STATS.chunks += 1
            await writer.drain()

    rt = asyncio.ensure_future(read_side())
    try:
        await write_side()
    except (ConnectionError, OSError):
        writer.transport.abort()
    finally:
        rt.cancel()


async def handle(client_r, client_w, target, delay):
    nodelay(client_w)
    try:
        server_r, server_w = await asyncio.wait_for(asyncio.open_connection(*target), timeout=10)
    except (OSError, asyncio.TimeoutError):
        STATS.failed_connects += 1
        client_w.transport.abort()
        return
    nodelay(server_w)
    STATS.connections += 1
    try:
        await asyncio.gather(pump(client_r, server_w, delay), pump(server_r, client_w, delay))
    finally:
        client_w.transport.abort()
        server_w.transport.abort()


async def serve(args):
    delay = args.delay / 1000.0
    entries = []
    with open(args.map) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 2:
                entries.append((parts[0], int(parts[1])))
    servers = []
    lines = []
    for name, tport in entries:
        target = (args.target, tport)
        srv = await asyncio.start_server(
            lambda r, w, t=target: handle(r, w, t, delay), args.listen, 0, backlog=1024
        )
        servers.append(srv)
        lines.append(f"{name} {srv.sockets[0].getsockname()[1]}\n")
    tmp = args.map + ".ports.tmp"
    with open(tmp, "w") as f:
        f.writelines(lines)
    os.replace(tmp, args.map + ".ports")
    print("ready", flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for srv in servers:
        srv.close()
    t = os.times()
    mean_late = STATS.sum_late_ms / max(STATS.deliveries, 1)
    print(
        f"latency_proxy: {STATS.connections} connections ({STATS.failed_connects} failed), "
        f"{STATS.chunks} chunks, {STATS.bytes} bytes, deliveries late by {mean_late:.2f} ms on average "
        f"(worst {STATS.max_late_ms:.1f} ms), "
        f"CPU {t.user + t.system:.2f} s",
        file=sys.stderr,
        flush=True,
    )


async def selftest(args):
    async def echo(r, w):
        nodelay(w)
        while True:
            data = await r.read(CHUNK)
            if not data:
                break
            w.write(data)
            await w.drain()
        w.close()

    esrv = await asyncio.start_server(echo, "127.0.0.1", 0)
    eport = esrv.sockets[0].getsockname()[1]
    delay = args.delay / 1000.0
    psrv = await asyncio.start_server(
        lambda r, w: handle(r, w, ("127.0.0.1", eport), delay), "127.0.0.1", 0
    )
    pport = psrv.sockets[0].getsockname()[1]

    async def rtts(port):
        r, w = await asyncio.open_connection("127.0.0.1", port)
        nodelay(w)
        out = []
        msg = b"x" * 64
        for _ in range(args.pings):
            t0 = time.perf_counter()
            w.write(msg)
            await w.drain()
            await r.readexactly(len(msg))
            out.append((time.perf_counter() - t0) * 1000)
        w.close()
        return out

    direct = await rtts(eport)
    proxied = await rtts(pport)
    # let the delayed end of stream reach the echo server, so nothing is left to cancel
    await asyncio.sleep(2 * delay + 0.1)
    print(
        f"TCP round trip, {args.pings} pings of 64 bytes: direct median {statistics.median(direct):.2f} ms "
        f"(max {max(direct):.2f}); through the proxy (delay {args.delay:g} ms each way) median "
        f"{statistics.median(proxied):.2f} ms (min {min(proxied):.2f}, max {max(proxied):.2f})"
    )
    esrv.close()
    psrv.close()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--delay", type=float, default=50.0, help="ms added in each direction (default 50)")
    p.add_argument("--listen", default="127.0.0.1", help="address of the listeners (default 127.0.0.1)")
    p.add_argument("--target", default="127.0.0.1", help="address of the targets (default 127.0.0.1)")
    p.add_argument("--map", help='file of "NAME TARGET_PORT" lines')
    p.add_argument("--selftest", action="store_true", help="measure the added round trip and exit")
    p.add_argument("--pings", type=int, default=20, help="pings per selftest leg (default 20)")
    args = p.parse_args()
    if args.delay < 0:
        p.error("--delay must be >= 0")
    if args.selftest:
        asyncio.run(selftest(args))
    elif args.map:
        asyncio.run(serve(args))
    else:
        p.error("--map FILE or --selftest is needed")


if __name__ == "__main__":
    main()
