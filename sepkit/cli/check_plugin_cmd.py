"""``sepkit check-plugin DISTRIBUTION``: run the contract tests for every component it registers."""

from __future__ import annotations


def add_parser(sub, parents) -> None:
    p = sub.add_parser(
        "check-plugin", parents=parents, help="run sepkit's contract tests on an installed plugin distribution"
    )
    p.add_argument("distribution", help="the plugin's distribution name, as 'sepkit plugins' shows it")
    p.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    p.set_defaults(run=run)


def run(args) -> int:
    from sepkit.testing.check_plugin import run_check_plugin

    code = run_check_plugin(args.distribution, args.pytest_args)
    return 0 if code == 0 else 1
