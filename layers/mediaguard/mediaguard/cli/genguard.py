"""``mediaguard genguard``: the generative-AI guard from the command line.

One group, one module per subcommand: ``screen`` (``cli.genguard_screen``) decides whether a
generation request may run; siblings add their parser in :func:`add_genguard_parser` and a
branch in :func:`run_genguard`.
"""

from __future__ import annotations

import argparse
from typing import Any

from mediaguard.cli.genguard_screen import Out, add_screen_parser, run_screen


def add_genguard_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``genguard`` and its subcommands to the ``mediaguard`` parser."""
    genguard = subparsers.add_parser("genguard", help="generative-AI guard: screen generation requests")
    commands = genguard.add_subparsers(dest="genguard_command", required=True, metavar="COMMAND")
    add_screen_parser(commands)
    return genguard


def run_genguard(args: argparse.Namespace, out: Out) -> int:
    if args.genguard_command == "screen":
        return run_screen(args, out)
    raise ValueError(f"unknown genguard command {args.genguard_command!r}")
