"""`narrwatch serve`, `narrwatch users ...` and `narrwatch narratives import|export`."""

from __future__ import annotations

import datetime as dt
import getpass
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from narrwatch.cli.narratives import narratives_app

if TYPE_CHECKING:
    from narrwatch.config import Settings
    from narrwatch.context import AppContext

users_app = typer.Typer(
    help="Accounts of the served app: reader, analyst, operator, admin.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.command("notify")(notify)
    app.add_typer(users_app, name="users")
    narratives_app.command("import")(import_narratives)
    narratives_app.command("export")(export_narratives)


def _fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def serve(
    host: Annotated[str | None, typer.Option(help="Address (default NARRWATCH_WEB_HOST, 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default NARRWATCH_WEB_PORT, 8000).")] = None,
) -> None:
    """Serve the app: today's report, review queue, seed editor, search, feeds."""
    import uvicorn

    from narrwatch.context import AppContext
    from narrwatch.web.app import create_app
    from narrwatch.web.settings import load_web_settings

    web = load_web_settings()
    ctx = AppContext.from_settings(_settings())
    app = create_app(ctx, web)
    bound_host, bound_port = host or web.host, port or web.port
    typer.echo(
        f"narrwatch serving on http://{bound_host}:{bound_port}/ "
        f"(store: {ctx.settings.resolved_database_url})"
    )
    try:
        # proxy_headers: the client address comes from X-Forwarded-For only from forwarded_allow_ips.
        uvicorn.run(
            app,
            host=bound_host,
            port=bound_port,
            log_level="info",
            proxy_headers=True,
            forwarded_allow_ips=",".join(web.trusted_proxies) or "127.0.0.1",
        )
    finally:
        ctx.close()


def notify(
    date: Annotated[
        str | None, typer.Option("--date", help="Day of the report, YYYY-MM-DD (default: yesterday, UTC).")
    ] = None,
) -> None:
    """Send a day's report summary by email and/or Slack (the daily DAG's notify task)."""
    from narrwatch.ops.notify import NotificationError, notify_day

    try:
        day = dt.date.fromisoformat(date) if date else (_now() - dt.timedelta(days=1)).date()
    except ValueError:
        _fail(f"--date: {date!r} is not a YYYY-MM-DD date")
    try:
        from narrwatch.web.settings import load_web_settings

        result = notify_day(_settings(), day, base_url=load_web_settings().base_url)
    except NotificationError as exc:
        _fail(str(exc), 1)
    typer.echo(json.dumps(result.as_dict()))


def _settings() -> Settings:
    from narrwatch.config import get_settings

    return get_settings()


def _context() -> AppContext:
    from narrwatch.context import AppContext

    return AppContext.from_settings(_settings())


def _password(prompt: bool, from_stdin: bool) -> str | None:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    if not prompt:
        return None
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Again: "):
        _fail("the passwords differ")
    return first


@users_app.command("add")
def users_add(
    username: str,
    role: Annotated[str, typer.Option(help="reader, analyst, operator or admin.")] = "reader",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin.")
    ] = False,
    sso_only: Annotated[
        bool, typer.Option("--sso-only", help="No password: log in through the proxy header.")
    ] = False,
) -> None:
    """Create an account (prompts for the password)."""
    from narrwatch.web.accounts import AccountError, add_user

    ctx = _context()
    try:
        account = add_user(ctx, username, role, _password(not sso_only, password_stdin), _now())
    except AccountError as exc:
        _fail(str(exc))
    finally:
        ctx.close()
    typer.echo(f"added {account.username} ({account.role})")


@users_app.command("passwd")
def users_passwd(
    username: str,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin.")
    ] = False,
) -> None:
    """Set an account's password."""
    from narrwatch.web.accounts import AccountError, set_password

    ctx = _context()
    try:
        set_password(ctx, username, _password(True, password_stdin) or "", _now())
    except AccountError as exc:
        _fail(str(exc))
    finally:
        ctx.close()
    typer.echo(f"password of {username} changed")


@users_app.command("list")
def users_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Every account with its role and last login."""
    from narrwatch.web.accounts import list_users

    ctx = _context()
    try:
        accounts = list_users(ctx)
    finally:
        ctx.close()
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {
                        "username": a.username,
                        "role": a.role,
                        "disabled": a.disabled,
                        "last_login_at": a.last_login_at.isoformat() if a.last_login_at else None,
                    }
                    for a in accounts
                ],
                indent=2,
            )
        )
        return
    for a in accounts:
        last = a.last_login_at.strftime("%Y-%m-%d %H:%M") if a.last_login_at else "never"
        typer.echo(
            f"{a.username:<24} {a.role:<9} {'disabled' if a.disabled else 'enabled ':<9} last login {last}"
        )


@users_app.command("disable")
def users_disable(
    username: str,
    enable: Annotated[bool, typer.Option("--enable", help="Enable the account again.")] = False,
) -> None:
    """Disable an account (its sessions stop working at once)."""
    from narrwatch.web.accounts import AccountError, set_disabled

    ctx = _context()
    try:
        set_disabled(ctx, username, not enable, _now())
    except AccountError as exc:
        _fail(str(exc))
    finally:
        ctx.close()
    typer.echo(f"{username} {'enabled' if enable else 'disabled'}")


@users_app.command("role")
def users_role(username: str, role: str) -> None:
    """Change an account's role."""
    from narrwatch.web.accounts import AccountError, set_role

    ctx = _context()
    try:
        set_role(ctx, username, role, _now())
    except AccountError as exc:
        _fail(str(exc))
    finally:
        ctx.close()
    typer.echo(f"{username} is now {role}")


def import_narratives(
    directory: Annotated[
        Path | None, typer.Option("--dir", help="Folder of seed files (default: NARRWATCH_NARRATIVES_DIR).")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Also overwrite seeds edited in the app since.")
    ] = False,
) -> None:
    """Import the seed files into the SQL store (each changed seed becomes a new revision)."""
    from narrwatch.steps.match.seeds import NarrativeError
    from narrwatch.steps.match.seedstore import import_seeds

    ctx = _context()
    folder = directory or ctx.settings.narratives_dir
    try:
        report = import_seeds(ctx, folder, _now(), "import", force=force)
    except NarrativeError as exc:
        _fail(str(exc))
    finally:
        ctx.close()
    typer.echo(
        f"created {len(report.created)}, updated {len(report.updated)}, unchanged {len(report.unchanged)}"
    )
    for entry in report.created + report.updated:
        typer.echo(f"  {entry}")
    for conflict in report.conflicts:
        typer.echo(f"  kept the app's text: {conflict}", err=True)


def export_narratives(
    directory: Annotated[
        Path | None, typer.Option("--dir", help="Folder to write (default: NARRWATCH_NARRATIVES_DIR).")
    ] = None,
) -> None:
    """Write the stored seeds as YAML files (files already holding the same seed are left as they are)."""
    from narrwatch.steps.match.seedstore import export_seeds

    ctx = _context()
    try:
        report = export_seeds(ctx, directory or ctx.settings.narratives_dir)
    finally:
        ctx.close()
    typer.echo(f"wrote {len(report.written)}, unchanged {len(report.unchanged)}")
    for path in report.written:
        typer.echo(f"  {path}")
