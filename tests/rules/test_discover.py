"""rules.discover: where the rules come from, the embedded default, and the .env file."""

from __future__ import annotations

from pathlib import Path

import pytest

from rules.discover import (
    EMBEDDED_DEFAULT_TOML,
    Discovery,
    apply_dotenv,
    discover,
    embedded_default,
    load_discovered,
    parse_dotenv,
)
from rules.errors import ConfigError
from rules.loader import check_bytes
from rules.model import KeySource

ROUTES = """\
version = 1
[providers.local]
base_url = "http://127.0.0.1:9"
key = { client = true }
[[route]]
name = "{name}"
match = "*"
to = "local"
"""

LEGACY = {"HAIKU_PROVIDER_BASE_URL": "https://api.z.ai/api/anthropic", "HAIKU_PROVIDER_API_KEY": "k"}


def write(path: Path, name: str = "from-file") -> Path:
    path.write_text(ROUTES.replace("{name}", name))
    return path


def config_error(config: str | None, env: dict[str, str], cwd: Path) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        discover(config, env, cwd)
    return info.value


# --- the order ---------------------------------------------------------------------------------

def test_config_flag_wins_over_everything(tmp_path: Path) -> None:
    write(tmp_path / "routes.toml")
    write(tmp_path / "env.toml")
    write(tmp_path / "flag.toml")
    env = {"GATEWAY_CONFIG": "env.toml", **LEGACY}
    assert discover("flag.toml", env, tmp_path) == Discovery(
        "file", tmp_path / "flag.toml", "--config flag.toml"
    )


def test_gateway_config_wins_over_local_file_and_legacy(tmp_path: Path) -> None:
    write(tmp_path / "routes.toml")
    gw = write(tmp_path / "gw.toml")
    env = {"GATEWAY_CONFIG": str(gw), **LEGACY}
    assert discover(None, env, tmp_path) == Discovery("file", gw, f"$GATEWAY_CONFIG={gw}")


def test_local_routes_toml_wins_over_legacy(tmp_path: Path) -> None:
    write(tmp_path / "routes.toml")
    assert discover(None, LEGACY, tmp_path) == Discovery(
        "file", tmp_path / "routes.toml", "./routes.toml"
    )


def test_legacy_environment_names_its_variables(tmp_path: Path) -> None:
    env = {**LEGACY, "OPUS_PROVIDER_BASE_URL": "https://x.example", "SONNET_PROVIDER_BASE_URL": ""}
    assert discover(None, env, tmp_path) == Discovery(
        "env", None, "legacy environment: HAIKU_PROVIDER_BASE_URL, OPUS_PROVIDER_BASE_URL"
    )


def test_embedded_default_when_nothing_else(tmp_path: Path) -> None:
    env = {"HAIKU_PROVIDER_API_KEY": "k", "GATEWAY_CONFIG": ""}  # neither counts
    assert discover(None, env, tmp_path) == Discovery(
        "default", None, "embedded default: no routes.toml and no legacy environment"
    )


def test_relative_paths_are_taken_from_cwd_and_absolute_ones_kept(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    f = write(tmp_path / "conf" / "gw.toml")
    assert discover("conf/gw.toml", {}, tmp_path).path == f
    assert discover(str(f), {}, Path("/")).path == f
    assert discover(None, {"GATEWAY_CONFIG": "conf/gw.toml"}, tmp_path).path == f


def test_home_is_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    f = write(tmp_path / "gw.toml")
    assert discover(None, {"GATEWAY_CONFIG": "~/gw.toml"}, Path("/")).path == f


def test_symlinks_are_not_resolved(tmp_path: Path) -> None:
    real = write(tmp_path / "real.toml")
    (tmp_path / "routes.toml").symlink_to(real)
    assert discover(None, {}, tmp_path).path == tmp_path / "routes.toml"
    assert discover("routes.toml", {}, tmp_path).path == tmp_path / "routes.toml"


# --- a named file that is not there is an error, never a fallback -------------------------------

def test_missing_config_flag_file_is_an_error_naming_path_and_origin(tmp_path: Path) -> None:
    write(tmp_path / "routes.toml")
    err = config_error("routes.tmol", LEGACY, tmp_path)
    assert err.file == "routes.tmol"
    assert str(tmp_path / "routes.tmol") in err.message
    assert "(from --config)" in err.message
    assert "leave out --config" in err.message


def test_missing_gateway_config_file_is_an_error_naming_path_and_origin(tmp_path: Path) -> None:
    write(tmp_path / "routes.toml")
    err = config_error(None, {"GATEWAY_CONFIG": "/nonexistent/gw.toml", **LEGACY}, tmp_path)
    assert err.file == "/nonexistent/gw.toml"
    assert "/nonexistent/gw.toml" in err.message
    assert "(from $GATEWAY_CONFIG)" in err.message
    assert "unset GATEWAY_CONFIG" in err.message


def test_directory_given_as_config_is_an_error(tmp_path: Path) -> None:
    err = config_error(".", {}, tmp_path)
    assert "is a directory" in err.message


def test_empty_config_flag_is_an_error(tmp_path: Path) -> None:
    write(tmp_path / "routes.toml")
    assert "--config is empty" in config_error("", {}, tmp_path).message


def test_dangling_local_symlink_is_chosen_and_fails_to_load(tmp_path: Path) -> None:
    (tmp_path / "routes.toml").symlink_to(tmp_path / "gone.toml")
    found = discover(None, LEGACY, tmp_path)
    assert found.kind == "file"
    with pytest.raises(ConfigError) as info:
        load_discovered(found, {})
    assert info.value.file == str(tmp_path / "routes.toml")


# --- loading what was found ---------------------------------------------------------------------

def test_load_discovered_file(tmp_path: Path) -> None:
    f = write(tmp_path / "routes.toml", name="mine")
    rules = load_discovered(discover(None, {}, tmp_path), {})
    assert rules.source.kind == "file" and rules.source.path == str(f)
    assert rules.route_names == ("mine",)


def test_load_discovered_invalid_file_is_a_located_error(tmp_path: Path) -> None:
    (tmp_path / "routes.toml").write_text("version = 1\n[providers.a\n")
    with pytest.raises(ConfigError) as info:
        load_discovered(discover(None, {}, tmp_path), {})
    assert info.value.line == 2


def test_load_discovered_legacy(tmp_path: Path) -> None:
    rules = load_discovered(discover(None, LEGACY, tmp_path), LEGACY)
    assert rules.source.kind == "env"
    assert rules.route_names == ("haiku", "default")


def test_load_discovered_default(tmp_path: Path) -> None:
    rules = load_discovered(discover(None, {}, tmp_path), {})
    assert rules.source.kind == "default"
    assert rules.route_names == ("default",)


# --- the embedded default -----------------------------------------------------------------------

def test_embedded_default_text_validates_cleanly() -> None:
    rules, problems = check_bytes(EMBEDDED_DEFAULT_TOML.encode(), file="<embedded default>", env={})
    assert problems == [] and rules is not None


def test_embedded_default_sends_everything_to_anthropic_client_key_first() -> None:
    rules = embedded_default({})
    anthropic = rules.providers["anthropic"]
    assert list(rules.providers) == ["anthropic"]
    assert anthropic.base_url == "https://api.anthropic.com"
    assert anthropic.key == (KeySource("client"), KeySource("oauth_file", ""))
    assert rules.routes[0].match == ("*",)
    route = rules.resolve("claude-opus-5-5")
    assert route is not None and route.name == "default" and route.to[0].provider is anthropic
    assert rules.source.kind == "default"
    assert rules.warnings == ()


def test_embedded_default_honours_gateway_anthropic_base_url() -> None:
    rules = embedded_default({"GATEWAY_ANTHROPIC_BASE_URL": "http://127.0.0.1:8999/"})
    assert rules.providers["anthropic"].base_url == "http://127.0.0.1:8999"
    with pytest.raises(ConfigError, match="GATEWAY_ANTHROPIC_BASE_URL"):
        embedded_default({"GATEWAY_ANTHROPIC_BASE_URL": "not a url"})


# --- .env -------------------------------------------------------------------------------------

def test_parse_dotenv_forms() -> None:
    text = (
        "# a comment\n"
        "\n"
        "HAIKU_PROVIDER_BASE_URL=https://api.z.ai/api/anthropic\n"
        "export HAIKU_PROVIDER_API_KEY = 'sk-#not-a-comment'\n"
        'ANTHROPIC_DEFAULT_HAIKU_MODEL="glm-4.7"  # trailing comment\n'
        "PLAIN=value # comment\n"
        "HASH=a#b\n"
        'ESCAPED="a\\"b\\nc"\n'
        'MULTI="line one\nline two"\n'
        "EMPTY=\n"
        "CRLF=windows\r\n"
        "not an assignment\n"
        "LAST=end"
    )
    assert parse_dotenv(text) == {
        "HAIKU_PROVIDER_BASE_URL": "https://api.z.ai/api/anthropic",
        "HAIKU_PROVIDER_API_KEY": "sk-#not-a-comment",
        "ANTHROPIC_DEFAULT_HAIKU_MODEL": "glm-4.7",
        "PLAIN": "value",
        "HASH": "a#b",
        "ESCAPED": 'a"b\nc',
        "MULTI": "line one\nline two",
        "EMPTY": "",
        "CRLF": "windows",
        "LAST": "end",
    }


def test_parse_dotenv_expands_variables_environment_first() -> None:
    text = "A=one\nB=${A}-two\nC=\"${HOME_DIR}/x\"\nD='${A}'\nE=${MISSING:-fallback}\n"
    assert parse_dotenv(text, {"HOME_DIR": "/home/me", "A": "env-a"}) == {
        "A": "one",
        "B": "env-a-two",
        "C": "/home/me/x",
        "D": "${A}",
        "E": "fallback",
    }


def test_apply_dotenv_sets_only_missing_variables(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("\ufeffHAIKU_PROVIDER_API_KEY=from-file\nHAIKU_PROVIDER_BASE_URL=https://a\n")
    environ = {"HAIKU_PROVIDER_API_KEY": "from-process"}
    assert apply_dotenv(tmp_path / ".env", environ) == ("HAIKU_PROVIDER_BASE_URL",)
    assert environ == {"HAIKU_PROVIDER_API_KEY": "from-process", "HAIKU_PROVIDER_BASE_URL": "https://a"}


def test_apply_dotenv_without_a_file_changes_nothing(tmp_path: Path) -> None:
    environ: dict[str, str] = {}
    assert apply_dotenv(tmp_path / ".env", environ) == ()
    assert environ == {}


def test_apply_dotenv_rejects_a_file_that_is_not_utf8(tmp_path: Path) -> None:
    (tmp_path / ".env").write_bytes(b"KEY=\xff\xfe\n")
    with pytest.raises(ConfigError, match="save it as UTF-8"):
        apply_dotenv(tmp_path / ".env", {})
