#!/usr/bin/env python3
"""The kv example's workload: writes keys through any replica, then reads every one back.

It finds the replicas in CHAOS_ADDRS_KV (set by chaos-ctl). A request that fails at one replica
(refused, reset, no answer within a second, "ERR no quorum") is tried at the next; a key whose
write no replica could get a quorum for, or that reads back wrong, is a failure. Exit status 1
if there was any, with one line per failure.
"""
import os
import socket
import sys
import time

KEYS = int(os.environ.get("KV_KEYS", "150"))
PAUSE = float(os.environ.get("KV_PAUSE", "0.04"))
TRIES = 6


def request(addrs, start, line):
    last = "no replica answered"
    for n in range(TRIES):
        host, port = addrs[(start + n) % len(addrs)].rsplit(":", 1)
        try:
            with socket.create_connection((host, int(port)), timeout=1.0) as s:
                s.settimeout(1.0)
                s.sendall((line + "\n").encode())
                reply = s.makefile("r").readline().rstrip("\n")
        except OSError as e:
            last = f"{host}:{port}: {e}"
            time.sleep(0.05)
            continue
        if reply.startswith("ERR"):
            last = f"{host}:{port}: {reply}"
            time.sleep(0.05)
            continue
        if reply:
            return reply
    raise RuntimeError(last)


def main():
    addrs = os.environ["CHAOS_ADDRS_KV"].split(",")
    failures = []
    for i in range(KEYS):
        try:
            if request(addrs, i, f"PUT k{i} v{i}") != "OK":
                failures.append(f"put k{i}: unexpected reply")
        except RuntimeError as e:
            failures.append(f"put k{i}: {e}")
        time.sleep(PAUSE)
    for i in range(KEYS):
        try:
            got = request(addrs, i + 1, f"GET k{i}")
            if got != f"VAL v{i}" and not any(f.startswith(f"put k{i}:") for f in failures):
                failures.append(f"get k{i}: {got}")
        except RuntimeError as e:
            failures.append(f"get k{i}: {e}")
    for f in failures:
        print("FAIL", f, flush=True)
    print(f"workload: {KEYS} keys, {len(failures)} failure(s)", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
