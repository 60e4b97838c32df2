"""The ``huimages`` command, run in-process with click's runner."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from huimages.ops.cli import main
from tests.imagetools import jpeg


@pytest.fixture
def runner(tmp_path: Path) -> CliRunner:
    return CliRunner(env={"HUIMAGES_HOME": str(tmp_path / "home"), "IMAGESERVERURL": "http://img.test/"})


@pytest.mark.parametrize("command", [[], ["serve"], ["upload"], ["url"], ["tag"], ["info"], ["check"], ["settings"]])
def test_help_everywhere(runner: CliRunner, command: list[str]) -> None:
    result = runner.invoke(main, [*command, "--help"])
    assert result.exit_code == 0
    assert "Usage:" in result.output


def test_upload_url_tag_info(runner: CliRunner, tmp_path: Path) -> None:
    photo = tmp_path / "photo.jpeg"
    photo.write_bytes(jpeg(300, 200))
    result = runner.invoke(main, ["upload", str(photo), "--title", "Sunset"])
    assert result.exit_code == 0, result.output
    image_id, url = result.stdout.split()
    assert url == f"http://img.test/o/{image_id}/Sunset.jpeg"  # huImages' title URL

    result = runner.invoke(main, ["url", image_id, "--size", "small"])
    assert result.stdout.strip() == f"http://img.test/240x160/{image_id}/Sunset.jpeg"
    result = runner.invoke(main, ["tag", image_id, "--size", "small"])
    assert 'width="240" height="160"' in result.stdout
    result = runner.invoke(main, ["info", image_id])
    assert json.loads(result.stdout)["title"] == ["Sunset"]


def test_upload_many_with_a_bad_file(runner: CliRunner, tmp_path: Path) -> None:
    files = []
    for n in range(3):
        path = tmp_path / f"{n}.jpeg"
        path.write_bytes(jpeg(100 + n, 100))
        files.append(str(path))
    bad = tmp_path / "notes.txt"
    bad.write_text("not an image")
    result = runner.invoke(main, ["upload", *files[:2], str(bad), files[2], str(tmp_path / "missing.jpeg")])
    assert result.exit_code == 1
    assert len(result.stdout.strip().splitlines()) == 3  # the good ones are stored and printed
    assert "notes.txt: not an image" in result.stderr
    assert "missing.jpeg" in result.stderr
    assert "2 of 5 files failed" in result.stderr


def test_errors_are_one_line_not_tracebacks(runner: CliRunner) -> None:
    result = runner.invoke(main, ["info", "nonsense"])
    assert result.exit_code == 1
    assert "invalid image ID" in result.output and "Traceback" not in result.output
    result = runner.invoke(main, ["url", "A" * 32 + "01", "--size", "huge"])
    assert result.exit_code == 1 and "unknown size name" in result.output
    bad_env = CliRunner(env={"HUIMAGES_JPEG_QUALITY": "lots"})
    result = bad_env.invoke(main, ["check"])
    assert result.exit_code == 1 and "HUIMAGES_JPEG_QUALITY" in result.output


def test_check_and_settings(runner: CliRunner) -> None:
    result = runner.invoke(main, ["check"])
    assert result.exit_code == 0
    assert "catalog" in result.stdout and "ok" in result.stdout
    result = runner.invoke(main, ["settings"])
    assert "IMAGESERVERURL=http://img.test/" in result.stdout
