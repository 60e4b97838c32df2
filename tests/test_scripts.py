"""The README's commands: scripts/serve must pass its arguments on to `huimages serve`."""

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_serve_script_passes_its_arguments(tmp_path: Path) -> None:
    # Arguments must not leak into the bootstrap (a sourced script sees its caller's arguments).
    result = subprocess.run(
        [str(REPO / "scripts" / "serve"), "--port", "1", "--help"],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "HUIMAGES_HOME": str(tmp_path)},
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    assert "--lighttpd" in result.stdout and "Usage: huimages serve" in result.stdout
