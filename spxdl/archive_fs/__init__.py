"""Where an archive's data lives: a local directory, or an object store, behind one ``Archive``.

- ``base``: ``Archive``, what the ledger, the engine and audit ask of the place the data lives
  (its layout, listing, footers and checksums, writes that land complete or not at all).
- ``local``: ``LocalArchive``, the data dir on disk, through ``storage`` exactly as before.
- ``remote``: pyarrow.fs for object stores: a URI resolved once per process, errors in spxdl's
  words, uploads through a hidden temp key moved into place only once checked.
- ``objects``: ``ObjectArchive``, the data dir as a bucket prefix (``s3://bucket/prefix``).

``open_archive(settings.data_dir, spool)`` picks one; nothing else branches on where data lives.
docs/storage.md ("Object storage") has the publish protocol and why.
"""

from __future__ import annotations

from pathlib import Path

from spxdl.archive_fs.base import Archive, Location
from spxdl.archive_fs.local import LocalArchive
from spxdl.lazy import lazy_getattr

# The object store's names load with pyarrow.fs (and its S3, GCS and Azure modules) on first use:
# a local archive never needs them.
__getattr__ = lazy_getattr(__name__, {"ObjectArchive": "objects", "TEMP_MAX_AGE_SECONDS": "objects",
                                      "resolve": "remote"})


def open_archive(data_dir: Path | str, spool: Path | None = None) -> Archive:
    """The archive at ``data_dir``: a local path, or an object-store URI (text), whose uploads are prepared
    in ``spool`` (a local directory; required for a URI)."""
    if isinstance(data_dir, str):
        if spool is None:
            raise ValueError("an object-store archive needs a local spool directory")
        from spxdl.archive_fs.objects import ObjectArchive

        return ObjectArchive(data_dir, spool)
    return LocalArchive(data_dir)


__all__ = ["TEMP_MAX_AGE_SECONDS", "Archive", "LocalArchive", "Location", "ObjectArchive", "open_archive", "resolve"]
