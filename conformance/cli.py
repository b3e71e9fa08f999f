"""``conformance``: run the suite, serve the reference deployment, list its faults."""

from __future__ import annotations

import argparse
import os
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
    serve.add_argument("--jobs", type=int, default=None,
                       help="jobs of the main member (default 300, or what the variation needs)")
    serve.add_argument("--fault", metavar="NAME",
                       help="serve with this fault or variation (see 'conformance faults')")
    serve.add_argument("--live", action="store_true",
                       help="change the listing as requests come in: a new job every few requests, "
                            "active jobs progressing (a live staging system)")
    serve.add_argument("--rate-limit", metavar="N", type=_positive_number,
                       help="answer 429 with Retry-After beyond N requests per second")
    serve.set_defaults(handler=command_serve)

    verify = commands.add_parser(
        "verify", help="check a certification bundle (certification.zip)",
        description="Check a certification bundle written by 'conformance run --profile certify': "
                    "file digests, the signature (with --public-key), suite and contract versions, "
                    "the results schema, and that every MUST passed and nothing was left unchecked.",
        epilog="exit codes: 0 verified, 1 not verified, 2 usage error (no such bundle, unreadable key).")
    verify.add_argument("bundle", metavar="BUNDLE", type=Path, help="the certification.zip to check")
    verify.add_argument("--public-key", metavar="FILE", type=Path,
                        help="the vendor's Ed25519 public key (PEM): the manifest must be signed by it")
    verify.set_defaults(handler=command_verify)

    keygen = commands.add_parser(
        "keygen", help="write an Ed25519 key pair for signing certification bundles",
        description="Write an Ed25519 key pair (PEM) for 'conformance run --profile certify "
                    "--signing-key'. The private key file gets mode 0600.")
    keygen.add_argument("--private-key", metavar="FILE", type=Path, default=Path("conformance-signing-key.pem"),
                        help="private key file (default: conformance-signing-key.pem)")
    keygen.add_argument("--public-key", metavar="FILE", type=Path,
                        help="public key file (default: the private key's name with .pub.pem)")
    keygen.add_argument("--force", action="store_true", help="overwrite existing key files")
    keygen.set_defaults(handler=command_keygen)

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

    from conformance import certify
    from conformance.client import RequestFailed
    from conformance.plugin import ConformancePlugin
    from conformance.session import RunContext

    options = {spec.name: getattr(args, spec.name) for spec in config.SETTINGS}
    settings = certify.prepare(config.resolve(options, config_file=args.config), args.pytest_args)
    for name in certify.ignored_settings(settings):
        print(f"conformance: note: {config.setting_label(name)} is ignored without --profile certify", file=sys.stderr)
    context = RunContext.open(settings)
    try:
        _announce(context)
        try:
            context.preflight()
        except RequestFailed as error:
            print(f"conformance: target unreachable: {error}", file=sys.stderr)
            return EXIT_UNREACHABLE
        pytest_args = [str(CHECKS_DIR), "-q", "-p", "no:cacheprovider", "--tb=short", "-rN",
                       "-W", "ignore::pytest.PytestAssertRewriteWarning",
                       *[a for a in args.pytest_args if a != "--"]]
        code = pytest.main(pytest_args, plugins=[ConformancePlugin(context)])
        if context.result.finished_at is None:
            print(f"conformance: the run could not complete (pytest exit {int(code)})", file=sys.stderr)
            return EXIT_UNREACHABLE
        if context.client.gave_up is not None:
            print(f"conformance: target unreachable during the run: {context.client.gave_up}", file=sys.stderr)
        if context.settings.profile == "certify":
            _write_bundle(context.settings)
        return context.result.exit_code()
    finally:
        context.close()


def _write_bundle(settings: config.Settings) -> None:
    from conformance import certify

    bundle = certify.write_bundle(settings)
    signed = f"signed with {settings.signing_key}" if settings.signing_key else "UNSIGNED (no --signing-key)"
    print(f"certification bundle: {bundle} ({signed}); check it with: conformance verify {bundle}")


def command_verify(args: argparse.Namespace) -> int:
    from conformance import certify

    try:
        verification = certify.verify(args.bundle, args.public_key)
    except certify.VerifyUsageError as error:
        print(f"conformance verify: {error}", file=sys.stderr)
        return EXIT_USAGE
    print("\n".join(verification.lines()))
    return 0 if verification.ok else 1


def command_keygen(args: argparse.Namespace) -> int:
    from conformance import certify

    public = args.public_key or args.private_key.with_name(args.private_key.stem + ".pub.pem")
    try:
        key_fingerprint = certify.keygen(args.private_key, public, force=args.force)
    except (FileExistsError, OSError) as error:
        print(f"conformance keygen: {error}", file=sys.stderr)
        return EXIT_USAGE
    print(f"private key: {args.private_key} (mode 0600; pass it as --signing-key, keep it secret)")
    print(f"public key:  {public} (give it to customers for 'conformance verify --public-key')")
    print(f"fingerprint: {key_fingerprint}")
    return 0


def _announce(context) -> None:
    where = "the bundled reference deployment at " if context.reference else ""
    print(f"conformance {__version__}: testing {where}{context.settings.base_url} "
          f"as organization {context.settings.org}", flush=True)


def command_serve(args: argparse.Namespace) -> int:
    from conformance.reference import server
    from conformance.reference.data import DEFAULT_JOBS
    from conformance.reference.faults import UnknownBehaviour, get_behaviour

    try:
        behaviour = get_behaviour(args.fault or "reference")
    except UnknownBehaviour as error:
        print(f"conformance: {error}", file=sys.stderr)
        return EXIT_USAGE
    jobs = args.jobs if args.jobs is not None else getattr(behaviour, "jobs", None) or DEFAULT_JOBS
    server.serve(port=args.port, jobs=jobs, behaviour=behaviour, live=args.live, rate_limit=args.rate_limit)
    return 0


def _positive_number(text: str) -> float:
    value = float(text)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number more than 0")
    return value


def command_faults(args: argparse.Namespace) -> int:
    from conformance.reference.faults import FAULTS, VARIATIONS

    name_width = max(map(len, [*FAULTS, *VARIATIONS]))
    breaks_width = max(len(", ".join(fault.breaks)) for fault in FAULTS.values())
    for title, registry in (("faults (each must make the suite fail a requirement it names)", FAULTS),
                            ("variations (the contract allows them; the suite must pass)", VARIATIONS)):
        print(title)
        for name, behaviour in sorted(registry.items()):
            breaks = ", ".join(behaviour.breaks) or "-"
            print(f"  {name:{name_width}}  {breaks:{breaks_width}}  {behaviour.description}")
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
    except BrokenPipeError:
        # The reader went away (e.g. `conformance faults | head`): stop quietly, as cat does.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
