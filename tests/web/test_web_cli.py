"""`narrwatch users ...` and `narrwatch narratives import|export` from the command line."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from narrwatch.cli import web as cli_web
from narrwatch.config import Settings
from narrwatch.context import AppContext
from narrwatch.web.accounts import authenticate

pytestmark = pytest.mark.db


@pytest.fixture
def app(ctx: AppContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> typer.Typer:
    import shutil

    folder = tmp_path / "narratives"
    shutil.copytree(ctx.settings.narratives_dir, folder, ignore=shutil.ignore_patterns("*.md"))
    settings: Settings = ctx.settings.model_copy(update={"narratives_dir": folder})
    ctx.settings = settings
    monkeypatch.setattr(cli_web, "_settings", lambda: settings)
    application = typer.Typer()
    application.add_typer(cli_web.narratives_app, name="narratives")
    cli_web.register(application)
    return application


def run(app: typer.Typer, *args: str, stdin: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), input=stdin)
    return result.exit_code, result.stdout + result.stderr


def test_users_add_list_passwd_disable(app: typer.Typer, ctx: AppContext) -> None:
    import datetime as dt

    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    assert (
        run(app, "users", "add", "ana", "--role", "analyst", "--password-stdin", stdin="first password\n")[0]
        == 0
    )
    code, out = run(app, "users", "add", "ana", "--password-stdin", stdin="other password\n")
    assert code != 0 and "exists already" in out
    code, out = run(app, "users", "add", "bob", "--role", "root", "--password-stdin", stdin="some password\n")
    assert code != 0 and "role must be one of" in out
    code, out = run(app, "users", "add", "eve", "--password-stdin", stdin="short\n")
    assert code != 0 and "at least 10 characters" in out
    assert authenticate(ctx, "ana", "first password", now) is not None
    assert run(app, "users", "passwd", "ana", "--password-stdin", stdin="second password\n")[0] == 0
    assert authenticate(ctx, "ana", "first password", now) is None
    assert authenticate(ctx, "ana", "second password", now) is not None
    code, out = run(app, "users", "list")
    assert code == 0 and "ana" in out and "analyst" in out
    assert run(app, "users", "disable", "ana")[0] == 0
    assert authenticate(ctx, "ana", "second password", now) is None
    assert "disabled" in run(app, "users", "list")[1]


def test_narratives_import_then_export_round_trips(app: typer.Typer, ctx: AppContext) -> None:
    folder = ctx.settings.narratives_dir
    before = {path.name: path.read_bytes() for path in folder.glob("*.yaml")}
    code, out = run(app, "narratives", "import")
    assert code == 0 and f"created {len(before)}" in out
    code, out = run(app, "narratives", "import")
    assert code == 0 and "created 0, updated 0" in out
    code, out = run(app, "narratives", "export")
    assert code == 0 and "wrote 0" in out  # hand-written files holding the same seeds are left alone
    assert {path.name: path.read_bytes() for path in folder.glob("*.yaml")} == before
    (folder / "broken.yaml").write_text("id: broken\ntitle: x\n")
    code, out = run(app, "narratives", "import")
    assert code != 0 and "broken.yaml" in out and "description" in out


def test_web_variables_pass_the_settings_check_and_misspelt_ones_are_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from narrwatch.config import get_settings
    from narrwatch.settings_check import UnknownSettingError
    from narrwatch.web.settings import load_web_settings

    monkeypatch.chdir(tmp_path)  # no .env here
    monkeypatch.setenv("NARRWATCH_WEB_BASE_URL", "https://narrwatch.example.org")
    get_settings.cache_clear()
    try:
        get_settings()  # the application's check leaves the app's variables to the app
    finally:
        get_settings.cache_clear()
    assert load_web_settings().base_url == "https://narrwatch.example.org"
    monkeypatch.setenv("NARRWATCH_WEB_BASE_ULR", "https://typo.example.org")
    with pytest.raises(UnknownSettingError, match="did you mean NARRWATCH_WEB_BASE_URL"):
        load_web_settings()
