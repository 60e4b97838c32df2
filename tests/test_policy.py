"""Size policy and signed URLs; property tests of the URL and size parsers."""

import dataclasses
import logging
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from huimages.client import Client
from huimages.config import DEFAULT_SIZES, Settings, SigningSettings
from huimages.core.ids import compute_id
from huimages.core.sizes import parse_size
from huimages.core.urls import parse_image_path, signature_of, split_request_target
from huimages.errors import HuImagesError
from huimages.http.app import ImageApp, create_app
from huimages.serving.policy import SizePolicy, sign
from huimages.serving.service import ImageService
from tests.imagetools import decode, jpeg
from tests.servers import site_settings
from tests.wsgi import call

NEW_KEY, OLD_KEY = "new-key-0123456789abcdef", "old-key-0123456789abcdef"


def site(tmp_path: Path, **env: str) -> tuple[Client, ImageApp]:
    """A site whose settings come from ``env`` (environment names), like production's."""
    service = ImageService.from_settings(site_settings(tmp_path, **env))
    return Client(service=service), create_app(service=service)


def path_and_query(url: str) -> tuple[str, str]:
    return split_request_target(url.removeprefix("http://img.test"))


def test_named_policy_refuses_other_sizes(tmp_path: Path) -> None:
    client, app = site(tmp_path, HUIMAGES_SIZE_POLICY="named", HUIMAGES_ALLOWED_SIZES="300x200")
    image_id = client.save_image(jpeg(800, 600))
    refused = call(app, f"/301x200/{image_id}.jpeg")
    assert refused.status == 403 and "only named and allowed sizes" in refused.text
    assert not client.service.cache.path("301x200", image_id).exists()  # nothing rendered
    for ok in ("small", "240x160", "75x75!", "300x200", "o"):
        assert call(app, f"/{ok}/{image_id}.jpeg").status == 200, ok


def test_signed_sizes(tmp_path: Path) -> None:
    client, app = site(tmp_path, HUIMAGES_SIZE_POLICY="named", HUIMAGES_URL_KEYS=f"{NEW_KEY},{OLD_KEY}")
    image_id = client.save_image(jpeg(800, 600))
    url = client.scaled_imageurl(image_id, "333x222")
    path, query = path_and_query(url)
    assert path == f"/333x222/{image_id}/image.jpeg"
    assert query == f"s={sign(f'/333x222/{image_id}.jpeg', NEW_KEY)}"  # signed over the canonical path
    response = call(app, path, QUERY_STRING=query)
    assert response.status == 200 and decode(response.body).size == (296, 222)
    assert "?" not in client.scaled_imageurl(image_id, "small")  # named sizes need no signature

    old = f"/400x400!/{image_id}.jpeg"
    assert call(app, old, QUERY_STRING=f"s={sign(old, OLD_KEY)}").status == 200  # rotation: old key still valid
    unsigned = call(app, f"/401x401!/{image_id}.jpeg")
    assert unsigned.status == 403 and "needs a signed URL" in unsigned.text
    other = call(app, f"/402x402!/{image_id}.jpeg", QUERY_STRING=query)  # a signature for another path
    assert other.status == 403 and "does not match this path" in other.text
    assert call(app, f"/403x403!/{image_id}.jpeg", QUERY_STRING=f"s={sign(old, 'x' * 20)}").status == 403
    fresh = f"/404x404!/{image_id}.jpeg"
    signed = f"s={sign(fresh, NEW_KEY)}"
    twice = call(app, fresh, QUERY_STRING=f"{signed}&{signed}")
    assert twice.status == 400 and "one at most" in twice.text
    for size in ("401x401!", "402x402!", "403x403!", "404x404!"):
        assert not client.service.cache.path(size, image_id).exists()


def test_keys_make_open_policy_signed(tmp_path: Path) -> None:
    client, app = site(tmp_path, HUIMAGES_URL_KEYS=NEW_KEY)
    image_id = client.save_image(jpeg(300, 300))
    assert call(app, f"/123x45/{image_id}.jpeg").status == 403
    path, query = path_and_query(client.scaled_imageurl(image_id, "123x45"))
    assert call(app, path, QUERY_STRING=query).status == 200
    assert call(app, path).status == 200  # once rendered, the cached file is served like lighttpd would


def test_signature_through_request_uri(tmp_path: Path) -> None:
    client, app = site(tmp_path, HUIMAGES_URL_KEYS=NEW_KEY)
    image_id = client.save_image(jpeg(300, 300))
    url = client.scaled_imageurl(image_id, "99x99!").removeprefix("http://img.test")
    assert "!" in url
    encoded = url.replace("!", "%21")  # some clients encode the "!"
    assert call(app, "/_huimages", REQUEST_URI=encoded).status == 200


def test_render_timeout_caches_nothing(tmp_path: Path) -> None:
    client, app = site(tmp_path, HUIMAGES_RENDER_TIMEOUT="1e-9")
    image_id = client.save_image(jpeg(1200, 900))
    response = call(app, f"/500x500/{image_id}.jpeg")
    assert response.status == 503 and "over the limit" in response.text and "Retry-After" in response.headers
    assert not client.service.cache.path("500x500", image_id).exists()
    _, patient = site(tmp_path)
    assert call(patient, f"/500x500/{image_id}.jpeg").status == 200


def test_admin_token_never_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    token = "admin-token-that-must-not-leak"
    _, app = site(tmp_path, HUIMAGES_ADMIN_TOKEN=token)
    caplog.set_level(logging.DEBUG)
    for header in (f"Bearer {token}", "Bearer wrong", token):
        response = call(app, "/processqueue", REMOTE_ADDR="198.51.100.7", HTTP_AUTHORIZATION=header)
        assert token not in response.text
    assert token not in caplog.text


# -- properties of the parsers -------------------------------------------------

POLICY_SETTINGS = Settings.at(Path("/nonexistent"), signing=SigningSettings("named", keys=(NEW_KEY, OLD_KEY)))
POLICY = SizePolicy(POLICY_SETTINGS)


@settings(max_examples=500)
@given(st.text(max_size=300))
def test_request_targets_raise_only_project_errors(raw: str) -> None:
    try:
        path, query = split_request_target(raw)
        parsed = parse_image_path(path)
        if parsed is not None:
            size = parse_size(parsed[0], DEFAULT_SIZES, 4096)
            POLICY.check(size, path, signature_of(query))
    except HuImagesError:
        pass


@settings(max_examples=300)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=40))
def test_size_tokens_raise_only_invalid_size(token: str) -> None:
    try:
        size = parse_size(token, DEFAULT_SIZES, 4096)
    except HuImagesError:
        return
    assert 1 <= size.width <= 4096 or size.is_original


sizes = st.one_of(
    st.sampled_from([*DEFAULT_SIZES, "o"]),
    st.builds(
        lambda w, h, crop: f"{w}x{h}{'!' if crop else ''}",
        st.integers(1, 4096),
        st.integers(1, 4096),
        st.booleans(),
    ),
)


@settings(max_examples=300)
@given(sizes, st.binary(min_size=1, max_size=8), st.sampled_from(["jpeg", "webp", "avif"]))
def test_every_emitted_url_round_trips(size: str, content: bytes, fmt: str) -> None:
    client = Client(
        service=ImageService.from_settings(dataclasses.replace(POLICY_SETTINGS, server_url="http://img.test/"))
    )
    image_id = compute_id(content)
    for url in (client.scaled_imageurl(image_id, size, format=fmt), client.imageurl(image_id, size, format=fmt)):
        path, query = path_and_query(url)
        parsed = parse_image_path(path)
        assert parsed is not None and parsed.image_id == image_id and parsed.extension == fmt
        emitted = parse_size(parsed[0], DEFAULT_SIZES, 4096)
        assert emitted.spec == parse_size(size, DEFAULT_SIZES, 4096).spec
        POLICY.check(emitted, path, signature_of(query))  # the server accepts what the client emits
