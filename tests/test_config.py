"""Settings resolve option > environment > file > default, and bad ones name themselves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conformance.config import ConfigError, Secret, resolve

TARGET = {"base_url": "https://api.example.com", "org": "org_1", "api_key": "k-option"}


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_option_beats_environment_beats_file_beats_default(tmp_path):
    config_file = write(tmp_path / "c.toml", 'org = "org_file"\ntimeout = 3\nmax_listing = 7\n')
    env = {"CONFORMANCE_ORG_ID": "org_env", "CONFORMANCE_TIMEOUT": "4"}
    settings = resolve({"base_url": "http://h", "api_key": "k", "org": "org_option"}, env, config_file, tmp_path)
    assert settings.org == "org_option"
    assert settings.timeout == 4.0
    assert settings.max_listing == 7
    assert settings.max_rps is None and settings.report_dir == Path("reports")
    assert settings.sources["org"] == "option" and settings.sources["timeout"] == "environment"
    assert settings.sources["max_listing"] == "file"


def test_empty_environment_variable_counts_as_unset(tmp_path):
    write(tmp_path / "conformance.toml", 'org = "org_file"\n')
    settings = resolve({"base_url": "http://h", "api_key": "k"}, {"CONFORMANCE_ORG_ID": ""}, None, tmp_path)
    assert settings.org == "org_file"


def test_conformance_toml_in_the_working_directory_is_read(tmp_path):
    write(tmp_path / "conformance.toml", '[conformance]\nmax_listing = 500\nmax_rps = 2\n')
    settings = resolve({}, {}, None, tmp_path)
    assert (settings.max_listing, settings.max_rps) == (500, 2.0)
    assert settings.files == (tmp_path / "conformance.toml",)


@pytest.mark.parametrize("line", ['base_url = "http://h"', 'api_key = "k"', 'bearer_token = "t"'])
def test_conformance_toml_in_the_working_directory_cannot_choose_target_or_credentials(tmp_path, line):
    write(tmp_path / "conformance.toml", f"[conformance]\n{line}\n")
    with pytest.raises(ConfigError, match="--config"):
        resolve({"base_url": "http://h", "org": "o", "api_key": "k"}, {}, None, tmp_path)
    explicit = resolve({"org": "o", "api_key": "k", "base_url": "http://h"}, {}, tmp_path / "conformance.toml",
                       tmp_path)
    assert explicit.files == (tmp_path / "conformance.toml",)


def test_credentials_are_secrets_that_never_print(tmp_path):
    settings = resolve(dict(TARGET), {}, None, tmp_path)
    assert isinstance(settings.api_key, Secret) and settings.api_key.reveal() == "k-option"
    assert "k-option" not in repr(settings) and "k-option" not in str(settings.public())
    assert settings.public()["api_key"] == "configured"
    assert settings.public()["second_user_api_key"] == "not configured"


def test_api_key_comes_from_freddy_api_key(tmp_path):
    settings = resolve({"base_url": "http://h", "org": "o"}, {"FREDDY_API_KEY": "k-env"}, None, tmp_path)
    assert settings.api_key.reveal() == "k-env"


@pytest.mark.parametrize("options, names", [
    ({"base_url": "ftp://x", "org": "o", "api_key": "k"}, "--base-url"),
    ({"base_url": "example.com", "org": "o", "api_key": "k"}, "--base-url"),
    ({"base_url": "http://h", "api_key": "k"}, "--org (CONFORMANCE_ORG_ID)"),
    ({"base_url": "http://h", "org": "o"}, "--api-key (FREDDY_API_KEY)"),
    ({"timeout": "soon"}, "--timeout"),
    ({"max_listing": "0"}, "--max-listing"),
    ({"hypothesis_profile": "fast"}, "--hypothesis-profile"),
])
def test_invalid_settings_name_themselves(tmp_path, options, names):
    with pytest.raises(ConfigError) as raised:
        resolve(options, {}, None, tmp_path)
    assert names in str(raised.value) and "\n" not in str(raised.value)


def test_unreadable_or_malformed_dataset_names_dataset(tmp_path):
    for path in (tmp_path / "missing.json", write(tmp_path / "bad.json", "{nope"),
                 write(tmp_path / "shape.json", json.dumps({"jobs": "x"}))):
        with pytest.raises(ConfigError, match="--dataset"):
            resolve({"dataset": str(path)}, {}, None, tmp_path)


def test_bad_config_files_name_config(tmp_path):
    with pytest.raises(ConfigError, match="--config: no such file"):
        resolve({}, {}, tmp_path / "none.toml", tmp_path)
    with pytest.raises(ConfigError, match="not valid TOML"):
        resolve({}, {}, write(tmp_path / "bad.toml", "org = "), tmp_path)
    with pytest.raises(ConfigError, match="unknown setting 'base'"):
        resolve({}, {}, write(tmp_path / "unknown.toml", 'base = "x"'), tmp_path)
