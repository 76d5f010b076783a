"""``mediaguard serve``: argument parsing and the foreground loop (the server is in serve.py)."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_USAGE = 0, 2


def add_serve_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``serve`` on the CLI's sub-parsers and return its parser."""
    serve = sub.add_parser(
        "serve",
        help="the reviewer console, review API and upload API on a local port (the local stack on moto)",
        description="Deploys the template into in-process moto, runs moto's server beside it for "
                    "aws --endpoint-url, and serves the console at / and the APIs under /api/.",
    )
    serve.add_argument("--host", default="127.0.0.1",
                       help="address the console, the APIs and the /s3/ stand-in listen on (default 127.0.0.1; "
                            "anything else lets whoever reaches it use them with a dev token, over plain HTTP; "
                            "moto's AWS endpoint always stays on 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="console and API port (default 8080)")
    serve.add_argument("--moto-port", type=int, default=None,
                       help="port of moto's AWS endpoint (default: --port + 1; 0 picks a free one)")
    serve.add_argument("--verbose", action="store_true", help="handler logs (INFO) on stderr")
    serve.add_argument("--faults", type=float, default=0.0, metavar="RATE",
                       help="fail this share of the stack's DynamoDB, S3, EventBridge, Step Functions and Lambda "
                            "calls with the errors AWS returns (e.g. 0.1; default 0: off)")
    serve.add_argument("--fault-seed", type=int, default=None, metavar="N", help="with --faults: a reproducible run")
    serve.add_argument("--schedule-speed", type=float, default=1.0, metavar="X",
                       help="run the template's scheduled functions (digest, SLA sweep, index build) X times "
                            "faster than their rates (default 1: real time; 0: never)")
    serve.add_argument("--export-console", type=Path, metavar="DIR",
                       help="write the console's static files and config.json to DIR for the ConsoleBucket, "
                            "then exit (needs --api-base)")
    serve.add_argument("--api-base", metavar="URL", help="with --export-console: the review API's URL")
    serve.add_argument("--uploads-api-base", metavar="URL",
                       help="with --export-console: the upload API's URL (default: --api-base)")
    return serve


def run_serve(args: argparse.Namespace, out: Any) -> int:
    """Run ``serve`` until Ctrl-C (or SIGTERM); ``out`` is the CLI's stdout writer
    (``.line(text)`` and ``.quiet_stdout()``, which moves handler logs to stderr)."""
    from mediaguard.local.serve import LocalServer, export_console

    if args.export_console is not None:
        if not args.api_base:
            sys.stderr.write("mediaguard serve: --export-console needs --api-base\n")
            return EXIT_USAGE
        for path in export_console(args.export_console, args.api_base, args.uploads_api_base):
            out.line(str(path))
        return EXIT_OK

    from mediaguard.local.faults import FaultPlan, FaultPlanError
    from mediaguard.local.state import default_path

    try:
        faults = FaultPlan(rate=args.faults, seed=args.fault_seed) if args.faults else None
    except FaultPlanError as exc:
        sys.stderr.write(f"mediaguard serve: {exc}\n")
        return EXIT_USAGE
    if args.schedule_speed < 0:
        sys.stderr.write("mediaguard serve: --schedule-speed must be 0 or positive\n")
        return EXIT_USAGE
    # serve.json tells `audit verify`, `bank` and `geofence` where this stack is (local/state.py).
    server = LocalServer(host=args.host, port=args.port, moto_port=args.moto_port,
                         log_level="INFO" if args.verbose else "WARNING", faults=faults,
                         schedules=args.schedule_speed or None, state_file=default_path())

    stopping = False

    def terminate(signum: int, frame: Any) -> None:
        nonlocal stopping
        if stopping:
            return  # a second Ctrl-C while stopping: the stop is already under way
        stopping = True
        raise KeyboardInterrupt  # the same clean stop as Ctrl-C

    # SIGINT too: a shell starts background jobs with SIGINT ignored, and `kill -INT` must
    # still stop a server started with `&`.
    previous = {sig: signal.signal(sig, terminate) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with out.quiet_stdout():
            server.start()
            for line in server.banner():
                out.line(line)
            # werkzeug's serve_forever returns (swallowing the KeyboardInterrupt) on Ctrl-C.
            server.serve_forever()
    except KeyboardInterrupt:
        pass  # Ctrl-C before serving began
    except OSError as exc:  # the address is not this machine's
        sys.stderr.write(f"mediaguard serve: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}\n")
        return EXIT_USAGE
    finally:
        stopping = True
        sys.stderr.write("mediaguard serve: stopping\n")
        if faults is not None and server.cloud is not None:
            sys.stderr.write(f"mediaguard serve: faults {server.cloud.fault_stats.summary()}\n")
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return EXIT_OK
