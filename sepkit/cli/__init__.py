"""The ``sepkit`` command line: one module per command, heavy imports only inside ``run``.

Exit codes: 0 success; 2 for any usage, recipe, input or checkpoint error (one
line on stderr, no traceback unless ``--debug``); 1 for an internal error.
"""

from __future__ import annotations

import argparse
import sys
import traceback

from sepkit import __version__
from sepkit.cli import (
    benchmark_cmd,
    check_plugin_cmd,
    complexity_cmd,
    data_cmd,
    evaluate_cmd,
    metrics_cmd,
    plugins_cmd,
    recipe_cmd,
    separate_cmd,
    train_cmd,
)
from sepkit.errors import SepkitError

COMMANDS = (
    separate_cmd, data_cmd, train_cmd, evaluate_cmd, metrics_cmd, benchmark_cmd, complexity_cmd, plugins_cmd,
    recipe_cmd, check_plugin_cmd,
)  # fmt: skip


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's own usage errors: exit 2 with one line
        self.print_usage(sys.stderr)
        self.exit(2, f"sepkit: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
    parser = _Parser(
        prog="sepkit",
        description="Text-queried audio source separation: sepkit separate MIX.wav -q 'extract the violin' -o OUT.wav",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"sepkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for module in COMMANDS:
        module.add_parser(sub, parents=[common])
    return parser


def parse_args(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Parse ``argv``; recipe overrides (``key.path=value``) may stand anywhere after the command.

    argparse fills a trailing ``overrides`` list only with the words right after the positionals,
    so ``sepkit separate mix.wav -q Q -o out.wav model.separator.hidden=16`` would be refused; the
    commands that take overrides (separate, complexity, train, recipe show: ``overrides``; benchmark:
    its ``systems`` list, where an override follows the system it changes) get every leftover word
    that is not an option. Anything else left over is a usage error, as before.
    """
    args, extras = parser.parse_known_args(argv)
    if not extras:
        return args
    lists = [getattr(args, k) for k in ("overrides", "systems") if isinstance(getattr(args, k, None), list)]
    target = lists[0] if lists else None
    if target is None or any(w.startswith("-") for w in extras):
        parser.error(f"unrecognized arguments: {' '.join(extras)}")
    target.extend(extras)
    return args


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parse_args(parser, argv)
    debug = getattr(args, "debug", False)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    try:
        return int(args.run(args) or 0)
    except SepkitError as exc:
        if debug:
            traceback.print_exc()
        print(f"sepkit: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sepkit: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: say so plainly
        if debug:
            traceback.print_exc()
        print(
            f"sepkit: internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback and report it)",
            file=sys.stderr,
        )
        return 1


def entry_point() -> None:
    sys.exit(main())
