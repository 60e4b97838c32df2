"""Serve sizes of photos from an embedded store, writing each derivative to a folder (for bench.py --against).

Run by ``scripts/bench.py --only quality --against REV`` with the huimages
of another revision on ``PYTHONPATH``, so it uses only the API every
revision with masters has: ``Client``, ``Settings.at``, ``Limits`` and
``service.derivative_bytes``.

    render_sizes.py OUT SIDE TOKEN,TOKEN,... PHOTO...  ->  OUT/<photo stem>/<n>.bin (n: the token's index)
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from huimages.client import Client
from huimages.config import Limits, Settings

LIMITS = Limits(max_pixels=100_000_000, max_upload_bytes=1 << 30, max_side=8192)


def main(out: Path, master_side: int, tokens: list[str], photos: list[Path]) -> None:
    with tempfile.TemporaryDirectory() as home:
        client = Client(Settings.at(Path(home), master_side=master_side, limits=LIMITS))
        for photo in photos:
            image_id = client.save_image(photo.read_bytes())
            folder = out / photo.stem
            folder.mkdir(parents=True, exist_ok=True)
            for index, token in enumerate(tokens):
                (folder / f"{index}.bin").write_bytes(client.service.derivative_bytes(token, image_id))


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3].split(","), [Path(p) for p in sys.argv[4:]])
