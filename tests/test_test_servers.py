"""The tests' own servers: what the suite relies on when it starts them."""

import socket
from pathlib import Path

import pytest

from tests.servers import LOOPBACK, SeaweedS3

pytestmark = pytest.mark.integration


def test_a_second_seaweedfs_runs_beside_the_first_and_neither_takes_a_fixed_port(
    seaweed: SeaweedS3, tmp_path: Path
) -> None:
    second = SeaweedS3(tmp_path / "second")
    second.start()
    try:
        for server in (seaweed, second):
            bucket = server.new_bucket()
            server.client().put_object(Bucket=bucket, Key="k", Body=b"x")
            assert server.client().get_object(Bucket=bucket, Key="k")["Body"].read() == b"x"
        for port in (8181, 9101):  # SeaweedFS's Iceberg catalog and Lance namespace, off
            with socket.socket() as probe:
                assert probe.connect_ex((LOOPBACK, port)) != 0, f"something listens on {port}"
    finally:
        second.kill()
