#!/usr/bin/env python3
"""A small replicated key-value store for chaos's process-chaos example.

Every replica listens on --port and keeps its data in --data (an append-only log, fsynced per
write). A client talks to any replica, which coordinates:

  PUT key value  -> written locally and to every peer; "OK" once a majority (self included) has
                    it durably, "ERR no quorum" otherwise
  GET key        -> asked of every replica; "VAL value" or "NONE" once a majority answered (a
                    majority read meets every majority write), "ERR no quorum" otherwise
  REPL key value -> (between replicas) store it; "ACK"
  LOOK key       -> (between replicas) "VAL value" or "NONE"
  DUMP           -> (between replicas) every pair, one "key value" line each, then "END"

A replica that starts with an empty data directory (a first start, or after a wipe) copies what
its peers hold before it listens, so a wiped replica comes back with the data.
"""
import argparse
import os
import signal
import socket
import socketserver
import sys
import threading

PEER_TIMEOUT = 0.5


def parse():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--peers", default="")
    return p.parse_args()


class Store:
    def __init__(self, directory):
        os.makedirs(directory, exist_ok=True)
        self.path = os.path.join(directory, "log")
        self.lock = threading.Lock()
        self.data = {}
        if os.path.exists(self.path):
            with open(self.path) as f:
                for line in f:
                    parts = line.rstrip("\n").split(" ", 1)
                    if len(parts) == 2:  # a torn last line from a crash is dropped
                        self.data[parts[0]] = parts[1]
        self.file = open(self.path, "a")

    def put(self, key, value):
        with self.lock:
            if self.data.get(key) == value:
                return
            self.file.write(f"{key} {value}\n")
            self.file.flush()
            os.fsync(self.file.fileno())
            self.data[key] = value


def ask(addr, line):
    """One request to a peer; the reply's lines, or None if it did not answer in time."""
    host, port = addr.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=PEER_TIMEOUT) as s:
            s.settimeout(PEER_TIMEOUT)
            s.sendall((line + "\n").encode())
            f = s.makefile("r")
            first = f.readline()
            if not first:
                return None
            if line == "DUMP":
                lines = [first.rstrip("\n")]
                while lines[-1] != "END":
                    nxt = f.readline()
                    if not nxt:
                        return None
                    lines.append(nxt.rstrip("\n"))
                return lines
            return [first.rstrip("\n")]
    except OSError:
        return None


def fan_out(peers, line):
    """Asks every peer at once; the answers that came back."""
    answers = [None] * len(peers)

    def one(i, addr):
        answers[i] = ask(addr, line)

    threads = [threading.Thread(target=one, args=(i, a)) for i, a in enumerate(peers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [a for a in answers if a is not None]


def main():
    args = parse()
    peers = [p for p in args.peers.split(",") if p]
    majority = (len(peers) + 1) // 2 + 1
    store = Store(args.data)
    if not store.data and peers:
        for dump in fan_out(peers, "DUMP"):
            for pair in dump[:-1]:
                k, v = pair.split(" ", 1)
                store.put(k, v)

    class Handler(socketserver.StreamRequestHandler):
        def handle(self):
            for raw in self.rfile:
                words = raw.decode().rstrip("\n").split(" ", 2)
                reply = self.answer(words)
                self.wfile.write((reply + "\n").encode())
                self.wfile.flush()

        def answer(self, w):
            if w[0] == "REPL" and len(w) == 3:
                store.put(w[1], w[2])
                return "ACK"
            if w[0] == "LOOK" and len(w) == 2:
                v = store.data.get(w[1])
                return "NONE" if v is None else f"VAL {v}"
            if w[0] == "DUMP":
                pairs = [f"{k} {v}" for k, v in list(store.data.items())]
                return "\n".join(pairs + ["END"])
            if w[0] == "PUT" and len(w) == 3:
                store.put(w[1], w[2])
                acks = 1 + sum(1 for a in fan_out(peers, f"REPL {w[1]} {w[2]}") if a == ["ACK"])
                return "OK" if acks >= majority else "ERR no quorum"
            if w[0] == "GET" and len(w) == 2:
                mine = store.data.get(w[1])
                answers = [a[0] for a in fan_out(peers, f"LOOK {w[1]}")]
                if 1 + len(answers) < majority:
                    return "ERR no quorum"
                found = [mine] if mine is not None else []
                found += [a[4:] for a in answers if a.startswith("VAL ")]
                return f"VAL {found[0]}" if found else "NONE"
            return "ERR bad request"

    class Server(socketserver.ThreadingTCPServer):
        allow_reuse_address = True
        daemon_threads = True

    server = Server(("127.0.0.1", args.port), Handler)
    # Graceful: SIGTERM ends the process cleanly (every acknowledged write is already fsynced).
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    print(f"kv listening on {args.port} with {len(store.data)} key(s)", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
