"""A stand-in for `gateway serve`, to test the gateway fixture without the real server.

Takes the same command line, answers GET /health with what it was started with (argv, cwd,
the environment variables the fixture controls, the config text), exits 0 on SIGINT.
`--exit-with N` exits at once with code N after printing a message; `--unhealthy` answers
/health with 503.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPORTED_ENV = ("HOME", "PATH", "CLAUDE_CONFIG_DIR", "ANTHROPIC_API_KEY", "GATEWAY_CONFIG", "ZAI_API_KEY")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="standin-gateway")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve")
    serve.add_argument("--config")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8082)
    serve.add_argument("--no-watch", action="store_true")
    serve.add_argument("--exit-with", type=int)
    serve.add_argument("--unhealthy", action="store_true")
    options = parser.parse_args(argv)

    if options.exit_with is not None:
        print(f"standin: exiting with {options.exit_with} as asked", file=sys.stderr)
        return int(options.exit_with)

    state = {
        "status": "ok",
        "argv": argv,
        "cwd": os.getcwd(),
        "env": {name: os.environ.get(name) for name in REPORTED_ENV},
        "config_text": Path(options.config).read_text() if options.config else None,
        "watch": not options.no_watch,
    }

    class Health(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            healthy = self.path == "/health" and not options.unhealthy
            body = json.dumps(state if healthy else {"status": "unhealthy"}).encode()
            self.send_response(200 if healthy else 503)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((options.host, options.port), Health)
    print(f"standin: serving on {options.host}:{options.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("standin: stopping on SIGINT", flush=True)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
