"""``conformance``: run the suite, serve the reference deployment, list its faults."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from conformance import __version__, config
from conformance.redaction import Redactor
from conformance.terminal import visible

EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
CHECKS_DIR = Path(__file__).resolve().parent / "checks"

EXIT_INTERNAL = 3
EXIT_INTERRUPTED = 130

RUN_EPILOG = """\
exit codes: 0 conformant or incomplete, 1 nonconformant, 2 usage or configuration error,
3 target unreachable, an internal error, or the run could not complete, 130 interrupted.
Release gate: --strict makes incomplete exit 1; with --baseline FILE (see 'conformance baseline')
listed MUST failures are known, and the run exits 1 on a new failure, an expired entry or an
entry no longer failing. Without --base-url and every other target setting the bundled reference
is tested; a target setting without --base-url is a configuration error.
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
        description="Run every check against a deployment and write report.html, junit.xml, "
                    "results.json and summary.md. Without --base-url the bundled reference deployment is "
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
    serve.add_argument("--port", type=_port, default=8000, help="port on 127.0.0.1 (default 8000; 0 picks one)")
    serve.add_argument("--jobs", type=_job_count, default=None,
                       help="jobs of the main member (default 300, or what the variation needs)")
    serve.add_argument("--latency", metavar="MS", type=_latency, default=0.0,
                       help="wait this many milliseconds before answering each request")
    serve.add_argument("--dataset-out", metavar="FILE", type=Path,
                       help="write the main member's jobs as the dataset DAT-01 compares with "
                            "(pass it to 'conformance run --dataset')")
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
        description="Check a certification bundle written by 'conformance run --profile certify':\n"
                    "its zip structure, file digests, the signature under the vendor's public key,\n"
                    "suite and contract versions, the results schema, that every MUST passed and\n"
                    "nothing was left unchecked, and that the product's deployment_url was the\n"
                    "tested target (not the bundled reference).\n\n"
                    "Only --public-key makes a bundle VERIFIED: without it anyone could have\n"
                    "written the bundle, so only its integrity is checked.",
        epilog=VERIFY_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    verify.add_argument("bundle", metavar="BUNDLE", type=Path, help="the certification.zip to check")
    verify.add_argument("--public-key", metavar="FILE", type=Path,
                        help="the vendor's Ed25519 public key (PEM), obtained from the vendor through a "
                             "channel you trust: the trust anchor; the manifest must be signed by it")
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

    requirements = commands.add_parser(
        "requirements", help="list the contract's requirements (id, level, text)",
        description="List the requirements of the contract this suite judges by (the CONTRACT.md "
                    "it ships): one per line with id, level and text, or as JSON with their "
                    "groups, the contract version and the SHA-256 of the contract file.")
    requirements.add_argument("--format", choices=("text", "json"), default="text",
                              help="text (default): one requirement per line; json: a document for tools")
    requirements.set_defaults(handler=command_requirements)

    from conformance import gate_cli

    gate_cli.add_commands(commands)

    faults = commands.add_parser("faults", help="list the reference deployment's faults and variations")
    faults.set_defaults(handler=command_faults)
    return parser


def add_setting_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("settings (option > environment > file > default)")
    for spec in config.SETTINGS:
        help_text = f"{spec.help} [env {spec.env}]" if spec.env else spec.help
        if spec.default is not None and not spec.flag and not spec.repeatable:
            help_text += f" (default: {spec.default})"
        if spec.flag:
            group.add_argument(spec.option, dest=spec.name, action="store_true", default=None, help=help_text)
        elif spec.repeatable:
            group.add_argument(spec.option, dest=spec.name, action="append", metavar=spec.metavar, default=None,
                               help=help_text)
        else:
            group.add_argument(spec.option, dest=spec.name, metavar=spec.metavar, default=None, help=help_text)


def command_run(args: argparse.Namespace) -> int:
    import pytest

    from conformance import certify, output, summary
    from conformance.client import RequestFailed
    from conformance.plugin import ConformancePlugin
    from conformance.session import CredentialRefused, RunContext

    options = {spec.name: getattr(args, spec.name) for spec in config.SETTINGS}
    settings = certify.prepare(config.resolve(options, config_file=args.config), args.pytest_args)
    for name in certify.ignored_settings(settings):
        print(f"conformance: note: {config.setting_label(name)} is ignored without --profile certify", file=sys.stderr)
    with output.guarded_console(Redactor(settings.secrets())):
        context = RunContext.open(settings)
        try:
            _announce(context)
            try:
                context.preflight()
            except RequestFailed as error:
                print(f"conformance: target unreachable: {error}", file=sys.stderr)
                return EXIT_UNREACHABLE
            except CredentialRefused as error:
                return _ended_before_checks(context, "error", str(error))
            except KeyboardInterrupt:
                return _ended_before_checks(context, "interrupted", "interrupted (SIGINT) before the first check")
            # The checks judge with expect()/fail(), never a bare assert: rewriting the package's
            # asserts, and pytest's collections looking for unraisable exceptions, cost CPU only.
            pytest_args = [str(CHECKS_DIR), "-q", "-p", "no:cacheprovider", "-p", "no:unraisableexception",
                           "--assert=plain", "--tb=short", "-rN", "-W", "ignore::pytest.PytestAssertRewriteWarning",
                           *[a for a in args.pytest_args if a != "--"]]
            plugin = ConformancePlugin(context)
            code = pytest.main(pytest_args, plugins=[plugin])
            if plugin.usage_error is not None or code == pytest.ExitCode.USAGE_ERROR:
                return EXIT_USAGE  # pytest printed the sentence; nothing ran
            if context.result.finished_at is None:
                print(f"conformance: the run could not complete (pytest exit {int(code)})", file=sys.stderr)
                return EXIT_INTERNAL
            if context.client.gave_up is not None:
                print(f"conformance: target unreachable during the run: {context.client.gave_up}", file=sys.stderr)
            bundle = None
            if context.settings.profile == "certify" and context.result.exit_code() in (0, 1):
                bundle = _write_bundle(context.settings)
            summary.print_artifacts(context.settings.report_dir, plugin.summary, [bundle] if bundle else [])
            return plugin.decision.exit_code if plugin.decision is not None else context.result.exit_code()
        finally:
            context.close()


def _ended_before_checks(context, verdict: str, reason: str) -> int:
    """Reports for a run that judged nothing: verdict ``interrupted`` (exit 130) or ``error``
    (exit 3), with the reason on one console line."""
    from conformance import gate, reports, summary

    if verdict == "interrupted":
        context.result.interrupted = reason
    else:
        context.result.run_error = reason
    context.result.finished_at = context.result.started_at
    reports.write_results_json(context.result, context.settings.report_dir, context.client.redactor)
    reports.write_junit(context.result, context.settings.report_dir, context.client.redactor)
    written = summary.write(context.result, gate.decide(context.result, context.settings),
                            context.settings.report_dir, context.client.redactor)
    print(f"verdict: {verdict.upper()} ({reason})", file=sys.stderr)
    summary.print_artifacts(context.settings.report_dir, written, file=sys.stderr)
    return context.result.exit_code()


def _write_bundle(settings: config.Settings) -> Path:
    from conformance import certify

    bundle = certify.write_bundle(settings)
    signed = f"signed with {settings.signing_key}" if settings.signing_key else "UNSIGNED (no --signing-key)"
    print(f"certification bundle: {bundle} ({signed}); check it with: conformance verify {bundle} "
          "--public-key <the vendor's public key>")
    return bundle


VERIFY_EPILOG = """\
exit codes:
  0  verified: the signature is valid under --public-key and every check holds
  1  not verified: a problem is listed (tampering, a failed or unchecked MUST, a malformed bundle)
  2  usage error: no such bundle, unreadable key
  4  integrity only, NOT certified: no --public-key was given and nothing else is wrong
     (a claimed key fingerprint in the bundle is never trusted)"""


def command_verify(args: argparse.Namespace) -> int:
    from conformance import certify

    try:
        verification = certify.verify(args.bundle, args.public_key)
    except certify.VerifyUsageError as error:
        print(f"conformance verify: {visible(str(error))}", file=sys.stderr)
        return EXIT_USAGE
    print("\n".join(verification.lines()))  # each line already passed through terminal.visible
    return verification.exit_code


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
    files = ", ".join(str(path) for path in context.settings.files) or "none"
    print(f"conformance {__version__}: testing {where}{visible(context.settings.base_url or '')} "
          f"as organization {visible(context.settings.org or '')} (settings files read: {visible(files)})", flush=True)
    for line in context.client.announcements():  # the route through a proxy, the pace and budget given
        print(line, flush=True)


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
    if args.port and not _port_is_free(args.port):
        print(f"conformance serve: port {args.port} on 127.0.0.1 is in use (choose another with --port, "
              "or --port 0 for any free one)", file=sys.stderr)
        return EXIT_USAGE
    if args.dataset_out is not None and not args.dataset_out.parent.is_dir():
        print(f"conformance serve: --dataset-out: no such folder: {visible(str(args.dataset_out.parent))}",
              file=sys.stderr)
        return EXIT_USAGE
    server.serve(port=args.port, jobs=jobs, behaviour=behaviour, live=args.live, rate_limit=args.rate_limit,
                 latency_ms=args.latency, dataset_out=args.dataset_out)
    return 0


def _port_is_free(port: int) -> bool:
    import socket

    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _port(text: str) -> int:
    value = _whole(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port: use 0 to 65535 (0 picks a free one)")
    return value


def _job_count(text: str) -> int:
    value = _whole(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is not a number of jobs: use 0 or more")
    return value


def _latency(text: str) -> float:
    try:
        value = config.number(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is not a latency: use 0 or more milliseconds")
    return value


def _whole(text: str) -> int:
    try:
        return config.whole_number(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _positive_number(text: str) -> float:
    try:
        value = config.number(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number more than 0")
    return value


def command_requirements(args: argparse.Namespace) -> int:
    import json

    from conformance import catalogue

    requirements = list(catalogue.REQUIREMENTS.values())
    if args.format == "json":
        document = {
            "contract": {"version": catalogue.CONTRACT_VERSION, "sha256": catalogue.contract_digest(),
                         "file": str(catalogue.contract_file())},
            "requirements": [{"id": r.id, "level": r.level, "group": r.group, "text": r.text}
                             for r in requirements],
        }
        print(json.dumps(document, indent=2, ensure_ascii=False))
        return 0
    print(f"contract {catalogue.CONTRACT_VERSION} ({len(requirements)} requirements, "
          f"sha256 {catalogue.contract_digest()[:12]}): {catalogue.contract_file()}")
    id_width = max(len(r.id) for r in requirements)
    level_width = max(len(r.level) for r in requirements)
    for r in requirements:
        print(f"  {r.id:{id_width}}  {r.level:{level_width}}  {r.text}")
    return 0


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
        print(f"conformance: configuration error: {visible(str(error))}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("conformance: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (e.g. `conformance faults | head`): stop quietly, as cat does.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as error:  # a bug of the suite: one line, never a verdict-like exit code
        print(f"conformance: internal error: {type(error).__name__}: {visible(str(error))[:500]}", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
