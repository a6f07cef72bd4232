#!/usr/bin/env python3
# Connection generator for bench/snapshot.ts: holds K loopback TCP connection pairs (2K sockets,
# both ends in this process) on 127.0.0.1 until its stdin closes, and dies by itself after
# LIFETIME seconds whatever happens (SIGALRM). Prints "ready K PORT" once every pair is established.
#   python3 bench/snapshot-generator.py K [LIFETIME_SECONDS]
# K is capped at 9000 (18k descriptors; the hard limit here is 20k per process): run several.
import resource
import signal
import socket
import struct
import sys

MAX_PAIRS = 9000


def main() -> int:
    if len(sys.argv) not in (2, 3):
        sys.stderr.write("usage: snapshot-generator.py K [LIFETIME_SECONDS]\n")
        return 2
    k = int(sys.argv[1])
    lifetime = int(sys.argv[2]) if len(sys.argv) == 3 else 300
    if not 0 <= k <= MAX_PAIRS or not 1 <= lifetime <= 3600:
        sys.stderr.write(f"K must be 0..{MAX_PAIRS} and LIFETIME 1..3600\n")
        return 2
    signal.alarm(lifetime)  # default action of SIGALRM: terminate, even if the parent is gone

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = 2 * k + 64
    if soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            sys.stderr.write(f"need {need} open files, hard limit is {hard}\n")
            return 1
        resource.setrlimit(resource.RLIMIT_NOFILE, (need if hard == resource.RLIM_INFINITY else hard, hard))

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1024)
    address = listener.getsockname()
    # RST on close instead of FIN: no TIME-WAIT sockets left over to skew the next size.
    linger = struct.pack("ii", 1, 0)
    pairs = []
    for _ in range(k):
        client = socket.create_connection(address, timeout=10)
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
        server, _ = listener.accept()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
        pairs.append((client, server))
    listener.close()  # only the established pairs stay
    sys.stdout.write(f"ready {k} {address[1]}\n")
    sys.stdout.flush()
    try:
        sys.stdin.buffer.read()  # returns when the parent closes our stdin or dies
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
