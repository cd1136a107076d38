"""The command line as a whole: --version, python -m gateway, usage errors, fast offline imports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from cli_support import EXAMPLES, Run, clean_environment

import gateway


def test_version(run: Run) -> None:
    result = run("--version")
    assert result.code == 0
    assert result.out.strip() == f"gateway {gateway.__version__}"


def test_python_dash_m_gateway_is_the_same_command(run: Run, workdir: Path) -> None:
    module = [sys.executable, "-m", "gateway"]
    assert run("--version", program=module).out.strip() == f"gateway {gateway.__version__}"
    (workdir / "bad.toml").write_text("version = 2\n", encoding="utf-8")
    script = run("validate", "bad.toml")
    as_module = run("validate", "bad.toml", program=module)
    assert as_module.code == script.code == 1
    assert as_module.out == script.out


def test_no_command_is_a_usage_error(run: Run) -> None:
    result = run()
    assert result.code == 2
    assert result.out == ""
    assert result.err.splitlines()[-1].startswith("Error: ")


def test_unknown_command_is_a_usage_error(run: Run) -> None:
    result = run("serv")
    assert result.code == 2
    assert "Error: " in result.err and "serv" in result.err


def test_serve_rejects_bad_numbers_before_starting(run: Run) -> None:
    for args in (("serve", "--port", "http"), ("serve", "--port", "0"), ("serve", "--port", "70000"), ("serve", "--workers", "0")):
        result = run(*args)
        assert result.code == 2, args
        assert result.err.splitlines()[-1].startswith("Error: argument --"), result.err
        assert "gateway serve --help" in result.err


def test_offline_commands_do_not_import_the_server_stack(tmp_path: Path) -> None:
    # validate and explain run in CI jobs and editors: Sanic and httpx must stay unimported.
    code = (
        "import sys\n"
        "from gateway.cli import main\n"
        f"assert main(['validate', {str(EXAMPLES / 'mixed.toml')!r}]) == 0\n"
        f"assert main(['explain', 'claude-haiku-5-5', '--config', {str(EXAMPLES / 'mixed.toml')!r}]) == 0\n"
        "assert main(['schema']) == 0\n"
        "heavy = sorted(m for m in ('sanic', 'httpx', 'aiohttp', 'gateway.server.serve') if m in sys.modules)\n"
        "print('HEAVY', heavy, file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=clean_environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "HEAVY []" in done.stderr
