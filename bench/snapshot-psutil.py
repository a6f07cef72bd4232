#!/usr/bin/env python3
# The competitor's way of taking the same snapshot, for bench/snapshot.ts: every inet socket from
# psutil.net_connections(kind="inet"), then per owning pid its name, username and cmdline.
# It prints only the processes and a socket count, not every socket: serializing the sockets would
# only add to psutil's time, and the bench means to measure the collection (so this errs in psutil's
# favour). Run as root to see every process's sockets.
#   /usr/bin/python3 bench/snapshot-psutil.py
import json
import sys

import psutil


def main() -> int:
    connections = psutil.net_connections(kind="inet")
    processes = {}
    for conn in connections:
        if conn.pid is None or conn.pid in processes:
            continue
        try:
            p = psutil.Process(conn.pid)
            processes[conn.pid] = {"name": p.name(), "user": p.username(), "cmdline": p.cmdline()}
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            processes[conn.pid] = None
    json.dump({"sockets": len(connections), "processes": processes}, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
