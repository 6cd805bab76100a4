"""Settings of the served app, read from ``NARRWATCH_WEB_*`` variables (or ``.env``)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class WebSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NARRWATCH_WEB_", env_file=".env", extra="ignore")

    host: str = Field("127.0.0.1", description="Address to listen on; loopback unless a proxy fronts it.")
    port: int = Field(8000, ge=1, le=65535)
    base_url: str = Field(
        "http://127.0.0.1:8000",
        description="The app's address as readers reach it: notifications link to its pages.",
    )
    secret_key: SecretStr | None = Field(
        None,
        description="Signs session cookies. Default: a random key kept in <data_dir>/web-secret-key "
        "(every process sharing the data dir shares it).",
    )
    session_hours: float = Field(12.0, gt=0, description="A session lasts this long after login.")
    cookie_secure: bool = Field(
        False, description="Send cookies over HTTPS only: set it when a TLS proxy fronts the app."
    )
    trusted_user_header: str | None = Field(
        None,
        description="Single sign-on: a header (e.g. X-Forwarded-User) naming the logged-in user, "
        "believed only from trusted_proxies. The user must exist; the role comes from narrwatch.",
    )
    trusted_proxies: list[str] = Field(
        default_factory=list, description="Client addresses whose trusted_user_header is believed."
    )
    login_attempts: int = Field(5, ge=1, description="Failed logins per user and address in login_window_s.")
    login_window_s: int = Field(300, ge=1)
    page_size: int = Field(25, ge=5, le=200, description="Rows per page of evidence, queue and search.")


WEB_PREFIX = "NARRWATCH_WEB_"


def load_web_settings() -> WebSettings:
    """The app's settings; a misspelt NARRWATCH_WEB_ variable (environment or .env) is an error."""
    import difflib

    from narrwatch.settings_check import UnknownSettingError, dotenv_names

    env_file = WebSettings.model_config.get("env_file")
    names = list(os.environ) + (dotenv_names(Path(str(env_file))) if env_file else [])
    known = [name.upper() for name in WebSettings.model_fields]
    lines = []
    for name in sorted({name for name in names if name.upper().startswith(WEB_PREFIX)}):
        bare = name.upper().removeprefix(WEB_PREFIX)
        if bare in known:
            continue
        close = difflib.get_close_matches(bare, known, n=1, cutoff=0.75)
        hint = f"; did you mean {WEB_PREFIX}{close[0]}?" if close else "; see narrwatch/web/settings.py"
        lines.append(f"{name}: no such setting{hint}")
    if lines:
        raise UnknownSettingError(lines)
    return WebSettings()


def secret_key(web: WebSettings, data_dir: Path) -> str:
    """The configured key, else one generated once and kept (mode 0600) in the data dir."""
    if web.secret_key is not None:
        return web.secret_key.get_secret_value()
    path = Path(data_dir) / "web-secret-key"
    if path.exists():
        return path.read_text(encoding="ascii").strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: if two processes start at once, the first one's key is the key.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="ascii").strip()
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(secrets.token_urlsafe(48))
    return path.read_text(encoding="ascii").strip()
