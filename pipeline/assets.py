"""Files the engine needs but never commits (model weights, sample media): found on disk
along a search path, or downloaded from mirrors and kept only if their sha256 matches."""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

Progress = Callable[[int, int], None]  # (bytes done, bytes total)


class ChecksumMismatch(ValueError):
    """A downloaded file is not the one the catalogue names."""


class DownloadFailed(FileNotFoundError):
    """No mirror gave a file with the right checksum; the message lists each attempt."""


def search_dirs(explicit: str, folder: str, repo_root: Path = REPO_ROOT) -> list[Path]:
    """Where to look, in order, without duplicates: the configured folder, ./<folder>,
    ../shared/<folder> beside the working directory and beside the checkout."""
    candidates = [Path(explicit).expanduser()] if explicit else []
    candidates += [
        Path.cwd() / folder,
        Path.cwd().parent / "shared" / folder,
        repo_root / folder,
        repo_root.parent / "shared" / folder,
    ]
    unique: list[Path] = []
    for path in candidates:
        resolved = path.resolve()
        if resolved not in unique:
            unique.append(resolved)
    return unique


def find(file_name: str, dirs: Sequence[Path]) -> Path | None:
    """The first ``dir/file_name`` that exists."""
    for folder in dirs:
        if (folder / file_name).is_file():
            return folder / file_name
    return None


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download(
    file_name: str,
    sha256: str,
    size: int,
    urls: Sequence[str],
    dest_dir: Path,
    progress: Progress | None = None,
) -> Path:
    """Fetch ``file_name`` into ``dest_dir`` from the first mirror whose bytes hash right.

    An existing good file is kept; a wrong one is never left behind (written to a
    temporary name and renamed only after the check).
    """
    dest_dir.mkdir(parents=True, exist_ok=True)
    target = dest_dir / file_name
    if target.is_file() and sha256_of(target) == sha256:
        return target
    errors = []
    for url in urls:
        fd, tmp_name = tempfile.mkstemp(dir=dest_dir, prefix=f".{file_name}.")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
                total = int(response.headers.get("Content-Length") or size)
                done = 0
                while chunk := response.read(1 << 16):
                    out.write(chunk)
                    done += len(chunk)
                    if progress:
                        progress(done, total)
            actual = sha256_of(tmp)
            if actual != sha256:
                raise ChecksumMismatch(f"sha256 {actual}, expected {sha256}")
            tmp.replace(target)
            return target
        except (OSError, ChecksumMismatch) as exc:
            errors.append(f"{url}: {exc}")
        finally:
            tmp.unlink(missing_ok=True)
    raise DownloadFailed(f"could not fetch {file_name}:\n  " + "\n  ".join(errors))
