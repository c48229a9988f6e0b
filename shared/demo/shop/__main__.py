"""``python -m shared.demo.shop --host 127.0.0.1 --port 8090 [--env-file .local/stack.env]``

Served by werkzeug's threaded server (``make_server(threaded=True)``), in one process: the
shop's requests are few and short (the page's long waits go to the experiences function,
not here), a thread per request is plenty, and one process is what ``make down`` stops
with one signal; gunicorn's master and workers would add nothing to a demo. ``make_server``
rather than ``run_simple``: no reloader and no development banner in the log.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path
from types import FrameType

from werkzeug.serving import make_server

from shared.demo.shop.catalogue import by_id
from shared.demo.shop.http_ingest import HttpOrderEvents
from shared.demo.shop.orders import OrderEvents
from shared.demo.shop.settings import SettingsSource, ShopSettings
from shared.demo.shop.views import create_app
from shared.platform import logs

DEFAULT_ENV_FILE = Path(__file__).resolve().parents[3] / ".local" / "stack.env"


def order_events(settings: ShopSettings) -> OrderEvents:
    return HttpOrderEvents(
        settings.ingest_url, settings.api_key.get_secret_value(), settings.ingest_timeout_s
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="shared.demo.shop", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--env-file", type=Path, default=DEFAULT_ENV_FILE)
    args = parser.parse_args(argv)
    logs.configure()
    # werkzeug's access log would print query strings (?shopper=...): the app logs paths.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    source = SettingsSource(args.env_file)
    app = create_app(source, by_id(), order_events)
    server = make_server(args.host, args.port, app, threaded=True)

    def stop(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    logging.getLogger("shared.demo.shop").info(
        "demo shop listening", extra={"url": f"http://{args.host}:{args.port}"}
    )
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
