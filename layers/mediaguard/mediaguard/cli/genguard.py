"""``mediaguard genguard``: the generative-AI guard from the command line.

One group, one module per subcommand: ``mark`` and ``verify`` (``cli.genguard_mark``) mark
generated outputs and recognise them; siblings add their parser in
:func:`add_genguard_parser` and a branch in :func:`run_genguard`.
"""

from __future__ import annotations

import argparse
from typing import Any

from mediaguard.cli.genguard_mark import Out, add_mark_parsers, run_mark


def add_genguard_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``genguard`` and its subcommands to the ``mediaguard`` parser."""
    genguard = subparsers.add_parser("genguard", help="generative-AI guard: mark and verify generated outputs")
    commands = genguard.add_subparsers(dest="genguard_command", required=True, metavar="COMMAND")
    add_mark_parsers(commands)
    return genguard


def run_genguard(args: argparse.Namespace, out: Out) -> int:
    if args.genguard_command in ("mark", "verify"):
        return run_mark(args, out)
    raise ValueError(f"unknown genguard command {args.genguard_command!r}")
