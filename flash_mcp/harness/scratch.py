"""Files the server writes into a sandboxed child's scratch directory, which the child can write too."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path


def fresh_file(path: Path, data: bytes, *, keep_open: bool = False) -> int:
    """Write `data` to a new file at `path` in the child's scratch, replacing whatever is there.

    The previous child could write the scratch: a symlink, FIFO or folder it left under this name is
    removed, and the file is created with O_EXCL | O_NOFOLLOW, so the server never writes outside.
    """
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(path, flags, 0o600)
    try:
        os.write(fd, data)
    except BaseException:
        os.close(fd)
        raise
    if keep_open:
        return fd
    os.close(fd)
    return -1
