"""Fetching Fashion-MNIST from its official mirrors, for a machine that has no copy.

``data.load_fashion_mnist`` calls this last, after the folders it searches; what arrives is
checked there like any other copy. Downloads resume after an interruption and are atomic."""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path

from .files import atomic_write, is_there
from .progress import redraws

MIRRORS = (
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/",
)


def download_files(folder: Path, names: Iterable[str], progress: bool = True) -> None:
    """Download ``NAME.gz`` for each name into ``folder`` from the first mirror that serves it,
    resuming partial downloads (``.NAME.gz.part``); a file appears only once complete. A name
    already there, gzipped or not (or something else by its name), is not fetched: two copies of
    one file are refused, and the check of the folder says what is in the way."""
    for name in names:
        target = folder / f"{name}.gz"
        if is_there(target) or is_there(folder / name):
            continue
        part = folder / f".{name}.gz.part"
        last_error = None
        for mirror in MIRRORS:
            try:
                _fetch(mirror + name + ".gz", part, progress)
                atomic_write(target, part.read_bytes())
                part.unlink()
                last_error = None
                break
            except OSError as e:  # URLError is an OSError
                last_error = e
        if last_error is not None:
            raise OSError(f"{name}.gz: {last_error}")


def _fetch(url: str, part: Path, progress: bool) -> None:
    part.parent.mkdir(parents=True, exist_ok=True)
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=30)
    except urllib.error.HTTPError as e:
        if have and e.code == 416:  # nothing after its end: the part is whole (a stop before it was
            return                  # renamed); the checksum checks it like any other copy
        raise
    with response:
        if have and response.status != 206:  # the server ignored the range: start over
            have = 0
        length = response.headers.get("Content-Length", "")  # (none, or no number: no percentage)
        length = int(length) if length.isdigit() else 0
        total = have + length if length else 0
        live = progress and total and redraws(sys.stderr)  # (a log gets one line, once the file is whole)
        with open(part, "ab" if have else "wb") as f:
            while chunk := response.read(1 << 16):
                f.write(chunk)
                have += len(chunk)
                if live:
                    print(f"\r  {url.rsplit('/', 1)[-1]}: {100 * have // total:3d}% "
                          f"of {total / 1e6:.1f} MB", end="", file=sys.stderr, flush=True)
            f.flush()
            os.fsync(f.fileno())
    if progress:
        print("" if live else f"  {url.rsplit('/', 1)[-1]}: {have / 1e6:.1f} MB", file=sys.stderr)
