"""Drives chaos-ctl's Toxiproxy API with the unmodified PyPI client toxiproxy-python, as a
Toxiproxy user's test would: python3 toxiproxy_redis.py API_HOST API_PORT REDIS_HOST:PORT.
Exits 1 at the first step that does not behave as Toxiproxy's would; prints what it measured."""

import socket
import sys
import time

from toxiproxy import Toxiproxy

LATENCY = 200


def redis_at(listen):
    host, port = listen.rsplit(":", 1)
    conn = socket.create_connection((host, int(port)), timeout=20)
    return conn


def ping_ms(conn):
    start = time.monotonic()
    conn.sendall(b"PING\r\n")
    answer = b""
    while not answer.endswith(b"\r\n"):
        chunk = conn.recv(64)
        if not chunk:
            raise AssertionError("the connection ended before PONG")
        answer += chunk
    if answer != b"+PONG\r\n":
        raise AssertionError(f"PING answered {answer!r}")
    return (time.monotonic() - start) * 1000


def refused(listen):
    try:
        redis_at(listen).close()
    except ConnectionRefusedError:
        return True
    return False


def main():
    api_host, api_port, upstream = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    server = Toxiproxy()
    server.update_api_consumer(api_host, api_port)
    print("version", server.version().decode().strip())
    proxy = server.create(upstream=upstream, name="redis")
    print(f"proxy {proxy.name} listen {proxy.listen} enabled {proxy.enabled}")
    conn = redis_at(proxy.listen)
    ping_ms(conn)

    proxy.add_toxic(type="latency", attributes={"latency": LATENCY})
    slow = ping_ms(conn)
    toxics = proxy.toxics()
    print(f"toxics {sorted(toxics)} ping_ms {slow:.1f}")
    assert slow >= LATENCY, f"PING took {slow} ms under a {LATENCY} ms latency"
    proxy.destroy_toxic("latency_downstream")
    assert proxy.toxics() == {}, "the toxic is still there"
    ping_ms(conn)

    with proxy.down():
        assert refused(proxy.listen), "a proxy that is down accepted a connection"
        print("down: refused")
    ping_ms(redis_at(proxy.listen))
    print("up: served")

    proxy.add_toxic(type="timeout", attributes={"timeout": 0})
    server.reset()
    assert proxy.toxics() == {}, "reset left toxics"
    print("reset: no toxics")
    assert proxy.destroy()
    assert server.proxies() == {}
    print("ok")


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001 - any failure is the test's failure
        print(f"FAILED: {e!r}", file=sys.stderr)
        sys.exit(1)
