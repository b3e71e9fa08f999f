"""``conformance``: run the suite, serve the reference deployment, list its faults."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from conformance import __version__, config

EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
CHECKS_DIR = Path(__file__).resolve().parent / "checks"

RUN_EPILOG = """\
exit codes: 0 conformant or incomplete, 1 nonconformant, 2 usage or configuration error,
3 target unreachable or the run could not complete.
Settings resolve option > environment > conformance.toml > default; an empty variable is unset.
Arguments after '--' go to pytest (e.g. -- -k limit)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="conformance",
        description="Conformance suite for GET /v1/music/{organization_id}/generations.",
    )
    parser.add_argument("--version", action="version", version=f"conformance {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run", help="run the suite against a deployment (default: the bundled reference)",
        description="Run every check against a deployment and write report.html, junit.xml "
                    "and results.json. Without --base-url the bundled reference deployment is "
                    "started and tested.",
        epilog=RUN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_setting_options(run)
    run.add_argument("--config", metavar="FILE", type=Path,
                     help=f"TOML file with the same settings (default: ./{config.DEFAULT_CONFIG_FILE} when present)")
    run.add_argument("pytest_args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    run.set_defaults(handler=command_run)

    serve = commands.add_parser(
        "serve", help="serve the reference deployment in the foreground",
        description="Serve the reference deployment on 127.0.0.1 and print its base URL, "
                    "organizations and keys, so you can try it with curl.")
    serve.add_argument("--port", type=int, default=8000, help="port on 127.0.0.1 (default 8000; 0 picks one)")
    serve.add_argument("--jobs", type=int, default=300, help="jobs of the main member (default 300)")
    serve.add_argument("--fault", metavar="NAME", help="serve with this fault (see 'conformance faults')")
    serve.set_defaults(handler=command_serve)

    faults = commands.add_parser("faults", help="list the reference deployment's faults and variations")
    faults.set_defaults(handler=command_faults)
    return parser


def add_setting_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("settings (option > environment > file > default)")
    for spec in config.SETTINGS:
        help_text = f"{spec.help} [env {spec.env}]" if spec.env else spec.help
        if spec.default is not None and not spec.flag:
            help_text += f" (default: {spec.default})"
        if spec.flag:
            group.add_argument(spec.option, dest=spec.name, action="store_true", default=None, help=help_text)
        else:
            group.add_argument(spec.option, dest=spec.name, metavar=spec.metavar, default=None, help=help_text)


def command_run(args: argparse.Namespace) -> int:
    import pytest

    from conformance.client import TargetUnreachable
    from conformance.plugin import ConformancePlugin
    from conformance.session import RunContext

    options = {spec.name: getattr(args, spec.name) for spec in config.SETTINGS}
    settings = config.resolve(options, config_file=args.config)
    context = RunContext.open(settings)
    try:
        _announce(context)
        try:
            context.preflight()
        except TargetUnreachable as error:
            print(f"conformance: target unreachable: {error}", file=sys.stderr)
            return EXIT_UNREACHABLE
        pytest_args = [str(CHECKS_DIR), "-q", "-p", "no:cacheprovider", "--tb=short", "-rN",
                       "-W", "ignore::pytest.PytestAssertRewriteWarning",
                       *[a for a in args.pytest_args if a != "--"]]
        code = pytest.main(pytest_args, plugins=[ConformancePlugin(context)])
        if context.result.finished_at is None:
            print(f"conformance: the run could not complete (pytest exit {int(code)})", file=sys.stderr)
            return EXIT_UNREACHABLE
        return context.result.exit_code()
    finally:
        context.close()


def _announce(context) -> None:
    where = "the bundled reference deployment at " if context.reference else ""
    print(f"conformance {__version__}: testing {where}{context.settings.base_url} "
          f"as organization {context.settings.org}", flush=True)


def command_serve(args: argparse.Namespace) -> int:
    from conformance.reference import server

    server.serve(port=args.port, jobs=args.jobs, behaviour=args.fault)
    return 0


def command_faults(args: argparse.Namespace) -> int:
    from conformance.reference.faults import FAULTS, VARIATIONS

    for title, registry in (("faults (each must make the suite fail a requirement it names)", FAULTS),
                            ("variations (the contract allows them; the suite must pass)", VARIATIONS)):
        print(title)
        for name, behaviour in sorted(registry.items()):
            breaks = ", ".join(behaviour.breaks) or "-"
            print(f"  {name:32} {breaks:20} {behaviour.description}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except config.ConfigError as error:
        print(f"conformance: configuration error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("conformance: interrupted", file=sys.stderr)
        return EXIT_UNREACHABLE


if __name__ == "__main__":
    sys.exit(main())
