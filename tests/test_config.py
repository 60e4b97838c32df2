from pathlib import Path

import pytest

from huimages.config import DEFAULT_SIZES, Settings
from huimages.errors import ConfigurationError


def test_defaults(tmp_path: Path) -> None:
    settings = Settings.from_env({})
    assert settings.server_url == "http://127.0.0.1:8080/"
    assert settings.jpeg_quality == 85
    assert settings.limits.max_side == 4096
    assert settings.limits.max_pixels == 50_000_000
    assert settings.paths.cache_dir == settings.paths.home / "cache"
    assert settings.paths.catalog_file == settings.paths.home / "catalog.sqlite3"
    assert settings.couch.cdn_db == "huimages_cdn"
    assert dict(settings.sizes) == DEFAULT_SIZES


def test_environment_names(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "IMAGESERVERURL": "https://i.example.com/img",
            "HUIMAGES_HOME": str(tmp_path),
            "HUIMAGES_JPEG_QUALITY": "70",
            "HUIMAGES_SIZES": "hero=1600x600!, small=200x100",
        }
    )
    assert settings.server_url == "https://i.example.com/img/"
    assert settings.paths.home == tmp_path
    assert settings.jpeg_quality == 70
    assert settings.sizes["hero"] == "1600x600!"
    assert settings.sizes["small"] == "200x100"
    assert settings.sizes["square"] == "75x75!"


def test_file_then_environment(tmp_path: Path) -> None:
    config = tmp_path / "huimages.toml"
    config.write_text('HUIMAGES_JPEG_QUALITY = 60\nHUIMAGES_MAX_SIDE = 2000\n[HUIMAGES_SIZES]\nbanner = "900x200!"\n')
    settings = Settings.from_env({"HUIMAGES_CONFIG": str(config), "HUIMAGES_MAX_SIDE": "3000"})
    assert settings.jpeg_quality == 60
    assert settings.limits.max_side == 3000
    assert settings.sizes["banner"] == "900x200!"


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"IMAGESERVERURL": "not a url"}, "IMAGESERVERURL"),
        ({"HUIMAGES_JPEG_QUALITY": "high"}, "HUIMAGES_JPEG_QUALITY"),
        ({"HUIMAGES_JPEG_QUALITY": "100"}, "HUIMAGES_JPEG_QUALITY"),
        ({"HUIMAGES_MAX_SIDE": "-1"}, "HUIMAGES_MAX_SIDE"),
        ({"HUIMAGES_SIZES": "big=0x10"}, "HUIMAGES_SIZES"),
        ({"HUIMAGES_SIZES": "Big=10x10"}, "HUIMAGES_SIZES"),
        ({"HUIMAGES_SIZES": "nonsense"}, "HUIMAGES_SIZES"),
        ({"HUIMAGES_CONFIG": "/nonexistent/huimages.toml"}, "HUIMAGES_CONFIG"),
    ],
)
def test_bad_values_name_the_setting(env: dict[str, str], names: str) -> None:
    with pytest.raises(ConfigurationError, match=names):
        Settings.from_env(env)


def test_unknown_key_in_file_is_an_error(tmp_path: Path) -> None:
    config = tmp_path / "huimages.toml"
    config.write_text("HUIMAGES_JPG_QUALITY = 60\n")
    with pytest.raises(ConfigurationError, match="unknown setting"):
        Settings.from_env({"HUIMAGES_CONFIG": str(config)})
