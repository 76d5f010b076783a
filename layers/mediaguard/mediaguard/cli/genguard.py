"""``mediaguard genguard``: the generative-AI guard from the command line.

One group, one module per subcommand family: ``screen`` (``cli.genguard_screen``) decides
whether a generation request may run; ``mark`` and ``verify`` (``cli.genguard_mark``) mark
generated outputs and recognise them.
"""

from __future__ import annotations

import argparse
from typing import Any

from mediaguard.cli.genguard_mark import add_mark_parsers, run_mark
from mediaguard.cli.genguard_screen import Out, add_screen_parser, run_screen


def add_genguard_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``genguard`` and its subcommands to the ``mediaguard`` parser."""
    genguard = subparsers.add_parser("genguard", help="generative-AI guard: screen requests, mark and verify outputs")
    commands = genguard.add_subparsers(dest="genguard_command", required=True, metavar="COMMAND")
    add_screen_parser(commands)
    add_mark_parsers(commands)
    return genguard


def run_genguard(args: argparse.Namespace, out: Out) -> int:
    if args.genguard_command == "screen":
        return run_screen(args, out)
    if args.genguard_command in ("mark", "verify"):
        return run_mark(args, out)
    raise ValueError(f"unknown genguard command {args.genguard_command!r}")
