#!/usr/bin/env python3
# Connection storm for bench/events.ts: short loopback TCP connections, one after another, as fast
# as one Python process can make them, or at a fixed rate; prints one JSON line at the end:
#   {"connections": N, "seconds": S, "per_second": X, "pid": CLIENT_PID, "server_pid": PID, "errors": E, "rate": R|null, "cpu": C|null}
#   python3 bench/storm.py [--seconds S] [--rate R] [--cpu C]
# Each connection: the client connects to 127.0.0.1 and sends 1 byte; the server (a forked child, so
# it runs beside the client instead of sharing its GIL) accepts, reads the byte and closes; the
# client reads the end of stream and closes. Only the client connects, so `pid` is the pid every
# connect event of the storm carries; the server listens and accepts, so accepts carry `server_pid`.
#
# The client closes with SO_LINGER 0, so its close is an RST. It closes last, after both sides are
# done (the server's byte was read and the server's FIN received), so nothing is cut short; what the
# RST buys is that no socket is left in TIME-WAIT: the server's side, which closed first and would
# hold it for 60 s, is in FIN-WAIT-2 and goes straight to CLOSE on the RST. Without it, at ~10k
# connections/s the TIME-WAIT sockets (60 s each) would take all 28k ephemeral ports within
# seconds. The probe sees a close either way.
#
# --cpu C keeps client and server on one CPU. Each connection is a strict ping-pong between the two
# processes, so on two CPUs most of its time can go to waking the other one (on a VM, an idle vCPU
# takes long to wake): pinned, the storm is ~40% faster, and its speed depends on what it costs,
# not on whether something else happens to keep the other CPU awake.
#
# Bounded: it stops after --seconds by itself, both processes die by SIGALRM at S+30 whatever
# happens, and the server also dies when the client does (PR_SET_PDEATHSIG).
import argparse
import ctypes
import json
import os
import signal
import socket
import struct
import sys
import time

SAFETY_SECONDS = 30
PR_SET_PDEATHSIG = 1
LINGER_ZERO = struct.pack("ii", 1, 0)


def serve(port_pipe: int) -> None:
    """The forked server: listen, say the port on port_pipe, then accept, read the byte, close; until killed."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass  # the alarm still bounds it
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    # listen() here, not in the client before the fork: the probe names the process that called
    # listen() in its accept events, and that must be this one.
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(4096)
    os.write(port_pipe, struct.pack("H", listener.getsockname()[1]))
    os.close(port_pipe)
    while True:
        try:
            conn, _ = listener.accept()
        except OSError:
            continue
        try:
            conn.recv(1)
        except OSError:
            pass
        conn.close()


def storm(address: tuple[str, int], seconds: float, rate: float | None) -> tuple[int, int, float]:
    """Connections one after another until `seconds` have passed; at `rate` per second if given (late ones go at once)."""
    connections = errors = 0
    start = time.monotonic()
    deadline = start + seconds
    interval = 1.0 / rate if rate else 0.0
    now = start
    while now < deadline:
        if rate:
            due = start + connections * interval
            if due > now + 0.001:  # sleep only when at least 1 ms ahead: time.sleep itself costs ~0.1 ms
                time.sleep(min(due, deadline) - now)
                now = time.monotonic()
                continue
        client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_ZERO)
            client.settimeout(5)
            client.connect(address)
            client.sendall(b"x")
            client.recv(1)  # b"": the server read the byte and closed
            connections += 1
        except OSError as error:
            errors += 1
            if errors <= 3:
                sys.stderr.write(f"storm: connection {connections + errors}: {error}\n")
        finally:
            client.close()
        now = time.monotonic()
    return connections, errors, now - start


def main() -> int:
    parser = argparse.ArgumentParser(description="Loopback TCP connection storm (bench/events.ts).")
    parser.add_argument("--seconds", type=float, default=5.0, help="how long to run (default 5)")
    parser.add_argument("--rate", type=float, default=None, help="connections per second (default: as fast as possible)")
    parser.add_argument("--cpu", type=int, default=None, help="run client and server on this CPU only (default: anywhere)")
    args = parser.parse_args()
    if not 0 < args.seconds <= 3600:
        parser.error(f"--seconds must be more than 0 and at most 3600, got {args.seconds}")
    if args.rate is not None and not 0 < args.rate <= 1_000_000:
        parser.error(f"--rate must be more than 0 and at most 1000000, got {args.rate}")
    if args.cpu is not None and args.cpu not in os.sched_getaffinity(0):
        parser.error(f"--cpu must be one of the CPUs this process may use ({sorted(os.sched_getaffinity(0))}), got {args.cpu}")
    signal.alarm(int(args.seconds) + SAFETY_SECONDS)  # default action: terminate, even if the parent is gone
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})  # before the fork: the server inherits it

    read_end, write_end = os.pipe()
    server_pid = os.fork()
    if server_pid == 0:
        os.close(read_end)
        serve(write_end)
        os._exit(0)
    os.close(write_end)
    try:
        port = os.read(read_end, 2)
        if len(port) != 2:
            sys.stderr.write("storm: the server died before it listened\n")
            return 1
        address = ("127.0.0.1", struct.unpack("H", port)[0])
        connections, errors, elapsed = storm(address, args.seconds, args.rate)
    finally:
        os.kill(server_pid, signal.SIGTERM)
        os.waitpid(server_pid, 0)
    result = {
        "connections": connections,
        "seconds": round(elapsed, 3),
        "per_second": round(connections / elapsed, 1) if elapsed > 0 else 0,
        "pid": os.getpid(),
        "server_pid": server_pid,
        "errors": errors,
        "rate": args.rate,
        "cpu": args.cpu,
    }
    sys.stdout.write(json.dumps(result) + "\n")
    return 0 if connections > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
