#!/usr/bin/env python3
"""Serve a current ClickHouse engine (chdb's embedded clickhouse-local) over the
native TCP and HTTP protocols, like clickhouse-server.

    chdb-server.py --config-file=DIR/config.xml

chdb embeds clickhouse-local, which has no server binary of its own; it opens
real listeners when the low-level entry point runs SYSTEM START LISTEN. It reads
config.xml from its working directory (listen_host, tcp_port, http_port, path,
users_config, remote_servers, timezone), so this launcher changes into the
config file's directory first. The listeners live as long as the query that
started them, so that query is a sleep that never ends.

SIGTERM / SIGINT stop it gracefully: SYSTEM STOP LISTEN TCP over HTTP, then
it waits (up to 20 s) until no query is running, so no insert is cut off after
its part was committed (the client's retry would store it twice), then exits.
SIGKILL is a crash, as with clickhouse-server.

Install the engine with `pip install -r requirements-test.txt` (pinned chdb).
"""

import argparse
import os
import signal
import sys
import threading
import time
import urllib.request
import xml.etree.ElementTree as ET

# A query that keeps the listeners open: one row per second for ~30 years.
_SERVE = (
    "SYSTEM START LISTEN TCP; SYSTEM START LISTEN HTTP; "
    "SELECT sleepEachRow(1) FROM numbers(1000000000) "
    "SETTINGS max_block_size = 1, function_sleep_max_microseconds_per_block = 0, "
    "max_execution_time = 0"
)


# How long a graceful stop waits for running queries (clickhouse-server's
# shutdown_wait_unfinished; the test harness kills after 30 s).
_DRAIN_SECONDS = 20


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config-file", required=True, help="config.xml (its directory becomes the working directory)")
    args = ap.parse_args()

    config = os.path.abspath(args.config_file)
    if os.path.basename(config) != "config.xml":
        print("chdb-server: the config file must be named config.xml (clickhouse-local reads ./config.xml)", file=sys.stderr)
        return 2
    root = ET.parse(config).getroot()
    path = (root.findtext("path") or "").strip()
    http_port = (root.findtext("http_port") or "").strip()
    host = (root.findtext("listen_host") or "127.0.0.1").strip()
    if not path or not http_port:
        print("chdb-server: config.xml needs <path> and <http_port>", file=sys.stderr)
        return 2
    os.makedirs(path, exist_ok=True)
    os.chdir(os.path.dirname(config))

    try:
        from chdb import _chdb  # the engine; imported after chdir so it finds ./config.xml
    except ImportError as e:
        print(f"chdb-server: chdb is not installed ({e}): pip install -r requirements-test.txt", file=sys.stderr)
        return 2

    def serve() -> None:
        try:
            _chdb.query(_SERVE, "CSV", path=path)
            print("chdb-server: the serving query ended", file=sys.stderr, flush=True)
        except Exception as e:  # the engine refused to start: say why
            print(f"chdb-server: {e}", file=sys.stderr, flush=True)
        os._exit(1)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    threading.Thread(target=serve, name="chdb-serve", daemon=True).start()
    print(f"chdb-server: serving {path} (http {host}:{http_port})", flush=True)
    while not stop.wait(1):
        pass

    # Stop accepting native-protocol connections and queries, let the running
    # queries finish (an insert cut off after its part was committed would be
    # retried by the client and stored twice), then exit without running the
    # engine's static destructors, which do not expect a query to be running.
    url = f"http://{host}:{http_port}/"

    def ask(sql: str) -> str:
        return urllib.request.urlopen(url, data=sql.encode(), timeout=10).read().decode().strip()

    try:
        ask("SYSTEM STOP LISTEN TCP")
        deadline = time.monotonic() + _DRAIN_SECONDS
        while time.monotonic() < deadline:
            running = ask(
                "SELECT count() FROM system.processes WHERE query_id != queryID() "
                "AND query NOT LIKE '%sleepEachRow(1) FROM numbers(1000000000)%'"
            )
            if running == "0":
                break
            time.sleep(0.05)
        else:
            print(f"chdb-server: queries still running after {_DRAIN_SECONDS} s; exiting", file=sys.stderr, flush=True)
    except Exception as e:
        print(f"chdb-server: graceful stop: {e}", file=sys.stderr, flush=True)
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
