"""The demo target: a TCP echo server and client in one process, moving 4 MiB through the loopback
and checking every byte. Python retries EINTR (PEP 475) and `sendall` finishes short writes, so a
correct program like this one passes under the `benign` profile however many faults are injected:

    chaos-ctl run -- python3 examples/roundtrip.py
"""

import hashlib
import os
import socket
import threading

SIZE = 4 << 20


def serve(listener):
    conn, _ = listener.accept()
    with conn:
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                return
            conn.sendall(chunk)


def main():
    listener = socket.create_server(("127.0.0.1", 0))
    threading.Thread(target=serve, args=(listener,), daemon=True).start()
    payload = os.urandom(SIZE)
    received = bytearray()
    with socket.create_connection(listener.getsockname()) as client:
        sender = threading.Thread(target=lambda: (client.sendall(payload), client.shutdown(socket.SHUT_WR)))
        sender.start()
        while len(received) < SIZE:
            chunk = client.recv(65536)
            if not chunk:
                break
            received += chunk
        sender.join()
    ok = hashlib.sha256(received).digest() == hashlib.sha256(payload).digest()
    if ok:
        print(f"ok: {len(received)} bytes echoed intact")
    else:
        print(f"CORRUPTED: {len(received)} of {SIZE} bytes")
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
