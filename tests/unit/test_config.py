from __future__ import annotations

import pytest

from bot.config import Settings


def test_defaults_and_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_TOKEN", "123:secret-value")
    monkeypatch.setenv("ADMIN_IDS", "1, 2;3")
    monkeypatch.setenv("TELEGRAM_API_URL", "http://127.0.0.1:8081/")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.admin_ids == frozenset({1, 2, 3})
    assert settings.telegram_api_url == "http://127.0.0.1:8081"
    assert settings.database_url.startswith("sqlite+aiosqlite:///")
    assert settings.default_language == "en"
    assert settings.token == "123:secret-value"
    # Secrets never show up in a repr (and so never in a log line).
    assert "secret-value" not in repr(settings)


def test_bad_language_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEFAULT_LANGUAGE", "fr")
    with pytest.raises(ValueError):
        Settings(_env_file=None)  # type: ignore[call-arg]


def test_env_example_documents_every_setting() -> None:
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / ".env.example").read_text()
    for name in Settings.model_fields:
        assert f"{name.upper()}=" in text, name


def test_env_example_copied_as_it_is_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    """A newcomer's first step is `cp .env.example .env`: its empty values mean "not set"."""
    from pathlib import Path

    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    example = Path(__file__).resolve().parents[2] / ".env.example"
    settings = Settings(_env_file=example)  # type: ignore[call-arg]
    assert settings.metrics_port is None
