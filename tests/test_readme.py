"""The README's commands work as written: the API tour runs by copy and paste."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tests.processes import BIN, cli_env, free_port, serving

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def sh_blocks(text: str) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", text, flags=re.DOTALL)


def tour_script() -> str:
    return sh_blocks(README.split("## API tour", 1)[1])[0]


class TestReadme:
    def test_ci_runs_the_test_command_the_readme_gives(self) -> None:
        test_command = sh_blocks(README)[1].strip()
        assert "pytest" in test_command
        assert test_command in (ROOT / ".ci" / "run").read_text()

    def test_api_tour_runs_as_written_and_shows_what_it_says(self, tmp_path: Path) -> None:
        env = cli_env(tmp_path)
        port = free_port()
        script = tour_script()
        assert "http://127.0.0.1:8000" in script
        # The same script, pointed at this test's server and interpreter.
        script = script.replace("http://127.0.0.1:8000", f"http://127.0.0.1:{port}")
        script = script.replace(".venv/bin/", f"{BIN}/")
        with serving(env, port):
            result = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", script],
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
        assert result.returncode == 0, result.stderr
        out = result.stdout
        assert '"parent":"eng"' in out
        assert '"progress":0.35' in out
        assert '"last_check_in":{' in out
        assert '"type":"/problems/conflict"' in out  # the team still owns an objective
        assert "a period must end after it starts" in out
        assert '"type":"/problems/forbidden"' in out  # the read token may not write
        assert '"type":"/problems/internal-error"' not in out


def test_every_test_the_reliability_guide_cites_exists() -> None:
    """docs/reliability.md names the test behind each guarantee: each must still be there."""
    guide = (ROOT / "docs" / "reliability.md").read_text()
    sources = "\n".join(p.read_text() for p in (ROOT / "tests").rglob("*.py"))
    for path in set(re.findall(r"`(tests/[\w/]+\.py)", guide)):
        assert (ROOT / path).exists(), path
    cited = set(re.findall(r"(?<![/\w])(test_\w+)\b(?!\.py)", guide))
    missing = sorted(name for name in cited if f"def {name}(" not in sources and
                     f"class {name}" not in sources)  # fmt: skip
    assert not missing, f"docs/reliability.md cites tests that do not exist: {missing}"
    for name in set(re.findall(r"::(Test\w+)", guide)):
        assert f"class {name}" in sources, name
