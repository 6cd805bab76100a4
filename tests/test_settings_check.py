"""Settings mistakes stop a command with exit 2 and a line naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from narrwatch.config import Settings
from narrwatch.settings_check import UnknownSettingError, check_variable_names, unknown_settings

BIN = Path(sys.executable).parent
FIELDS = list(Settings.model_fields)


def test_a_misspelt_variable_names_the_closest_setting() -> None:
    assert unknown_settings(["NARRWATCH_EMBEDING_MODEL", "NARRWATCH_DATA_DIR", "HOME"], FIELDS) == [
        "NARRWATCH_EMBEDING_MODEL: no such setting; did you mean NARRWATCH_EMBEDDING_MODEL?"
    ]
    assert unknown_settings(["NARRWATCH_TEST_DATABASE_URL", "NARRWATCH_REGEN_GOLDEN"], FIELDS) == []
    assert "the settings are in narrwatch/config.py" in unknown_settings(["NARRWATCH_ZZZ"], FIELDS)[0]


def test_a_misspelt_name_in_the_env_file_counts_too(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("# comment\nexport NARRWATCH_RETENTON_DAYS=40\n", encoding="utf-8")
    with pytest.raises(UnknownSettingError, match="did you mean NARRWATCH_RETENTION_DAYS"):
        check_variable_names({}, env_file, FIELDS)


def test_the_cli_exits_2_naming_the_variable(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("NARRWATCH_")}
    env |= {"NARRWATCH_DATA_DIR": str(tmp_path), "NARRWATCH_FEEDS_FIEL": "x.yaml"}
    done = subprocess.run(
        [str(BIN / "narrwatch"), "status"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120
    )
    assert done.returncode == 2, done.stderr
    assert "NARRWATCH_FEEDS_FIEL: no such setting; did you mean NARRWATCH_FEEDS_FILE?" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("url", "key", "ok"),
    [
        ("http://qdrant:6333", None, False),
        ("https://qdrant.example.org", None, False),
        ("http://10.0.0.5:6333", None, False),
        ("http://qdrant:6333", "secret", True),
        ("http://127.0.0.1:6333", None, True),
        ("http://localhost:6333", None, True),
        ("http://[::1]:6333", None, True),
    ],
)
def test_qdrant_api_key_is_required_off_loopback(url: str, key: str | None, ok: bool) -> None:
    def make() -> Settings:
        return Settings(qdrant_url=url, qdrant_api_key=key, _env_file=None)  # type: ignore[call-arg]

    if ok:
        assert make().qdrant_url == url
    else:
        with pytest.raises(ValidationError, match="NARRWATCH_QDRANT_API_KEY is required"):
            make()
