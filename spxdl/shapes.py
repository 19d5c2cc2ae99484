"""The shape of an archive: what made its files (``_archive.json``), and the refusal of a run of another shape.

Files of two shapes in one directory (two intervals, two greeks rates, simulated and real, two
simulator profiles, two validation modes: flagged rows kept in some files and dropped from others)
would read as one table and mislead, so the first run records its shape and every later run must
match it. A newer ``schema_version`` only appends columns: an archive of an
older one is upgraded.

A simulated archive also records the DTE window it was made with (``window``, never compared):
commands given no window of their own judge it by that one (``--simulate``'s demo picks a narrow
window; ``gaps`` must not then call every demo day a gap).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Mapping

from spxdl import storage
from spxdl.archive_fs import Archive
from spxdl.config import Settings
from spxdl.datasets import Dataset
from spxdl.errors import ArchiveMismatch, StorageError

log = logging.getLogger(__name__)

WINDOW = "window"  # [min_dte, max_dte] a simulated archive was made with: a default, not compared
NOT_COMPARED = frozenset({WINDOW})
# Keys later versions record: an archive made before lacks them and gets them from the next run.
ADDED_LATER = ("sim_profile", "sim_seed", WINDOW, "validation")


def archive_shape(
    dataset: Dataset, settings: Settings, simulator: Mapping[str, str] | None = None
) -> dict[str, object]:
    """What shapes the files of one archive; ``simulator`` holds the simulator's facts (profile, seed)."""
    shape: dict[str, object] = {
        "dataset": dataset.name,
        "schema_version": dataset.schema_version,
        "interval": settings.interval if dataset.uses_interval else None,
        "start_time": settings.start_time.isoformat(),
        "end_time": settings.end_time.isoformat(),
        "source": "simulator" if simulator is not None else "terminal",
        "validation": settings.validation_mode,
    }
    if dataset.greeks_params:
        shape.update(rate=settings.rate, rate_value=settings.rate_value, annual_div=settings.annual_div)
    if simulator is not None:
        seed = simulator.get("seed")
        shape.update(
            sim_profile=simulator.get("profile"),
            sim_seed=int(seed) if seed is not None and seed.isdigit() else seed,
            window=[settings.min_dte, settings.max_dte],
        )
    return shape


def recorded_shape(data_dir: Path, archive: str) -> dict[str, Any] | None:
    """The shape ``archive`` was made with, or None before its first run (StorageError if unreadable)."""
    path = storage.archive_json_path(data_dir, archive)
    return _read_shape(path) if path.exists() else None


def _normalized(shape: Mapping[str, object]) -> dict[str, Any]:
    """``shape`` as it reads back from JSON (tuples become lists, dates strings)."""
    return json.loads(storage.json_bytes(dict(shape)))


def _read_shape(path: Path) -> dict[str, Any]:
    try:
        recorded = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise StorageError(f"{path} cannot be read ({exc}); {storage.MOVE_ASIDE}", path=str(path)) from exc
    if not isinstance(recorded, dict):
        raise StorageError(f"{path} does not hold a JSON object; {storage.MOVE_ASIDE}", path=str(path))
    return recorded


def shape_differences(recorded: Mapping[str, Any], wanted: Mapping[str, Any]) -> list[str]:
    """One ``key: recorded vs wanted`` line per key whose value differs."""
    keys = sorted((set(recorded) | set(wanted)) - NOT_COMPARED)
    return [
        f"{key}: {recorded.get(key)!r} in the archive, {wanted.get(key)!r} asked"
        for key in keys
        if recorded.get(key) != wanted.get(key)
    ]


def ensure_archive_shape(data_dir: Path, archive: str, shape: Mapping[str, object], *,
                         mirror: Archive | None = None) -> None:
    """Record ``shape`` in the archive's ``_archive.json`` on first use; refuse a different one.

    ArchiveMismatch lists the differing keys and says to use another data dir: files of two
    shapes (say, two greeks rates) in one directory would read as one table and mislead. A newer
    ``schema_version`` only appends columns, so an archive of an older one is upgraded (new files
    get the new columns; old files read with them through ``union_by_name``); an archive of a
    newer one is refused (it was written by a newer spxdl).

    ``data_dir`` is where the ledger lives; with the data elsewhere (``mirror``, an object store),
    the shape published there is taken first when the ledger has none (a ledger dir started
    afresh must not record another shape over the data's), and the result is published there.
    """
    path = storage.archive_json_path(data_dir, archive)
    if mirror is not None:
        adopt_published(data_dir, archive, mirror)
    where = mirror.show(mirror.at(archive)) if mirror is not None else str(storage.dataset_dir(data_dir, archive))
    _ensure_shape(where, archive, path, _normalized(shape))
    if mirror is not None:
        published = mirror.at(path.relative_to(data_dir))
        if mirror.read_bytes(published) != path.read_bytes():
            mirror.publish(published, path.read_bytes())


def adopt_published(data_dir: Path, archive: str, mirror: Archive) -> bool:
    """Take the shape published next to the data when the ledger (``data_dir``) has none: a ledger dir started
    afresh for an existing archive. True if taken."""
    path = storage.archive_json_path(data_dir, archive)
    if path.exists():
        return False
    published = mirror.at(path.relative_to(data_dir))
    data = mirror.read_bytes(published)
    if data is None or not storage.create_bytes_once(path, data):
        return False
    log.info("took the shape of %s from %s", archive, mirror.show(published))
    return True


def _ensure_shape(where: str, archive: str, path: Path, wanted: dict[str, Any]) -> None:
    if not path.exists() and storage.create_bytes_once(path, storage.json_bytes(wanted)):
        log.info("recorded the shape of %s in %s", archive, path)
        return
    recorded = _fill_added_keys(path, _read_shape(path), wanted)
    if _upgrades_schema(recorded, wanted):
        log.warning(
            "%s holds files of schema version %s; new files are version %s (columns appended at the end): "
            "read both with DuckDB's union_by_name, or download again with --force (docs/storage.md)",
            where, recorded.get("schema_version"), wanted.get("schema_version"),
        )
        storage.write_json_atomic(path, {**recorded, "schema_version": wanted.get("schema_version")})
        recorded = _read_shape(path)
    differences = shape_differences(recorded, wanted)
    if differences:
        raise ArchiveMismatch(
            f"{where} holds data of another shape ({'; '.join(differences)}); "
            "use another data dir for these settings, or the settings the archive was made with",
            path=str(path),
        )


def _upgrades_schema(recorded: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    """Whether ``wanted`` differs from ``recorded`` only by a newer schema version."""
    old, new = recorded.get("schema_version"), wanted.get("schema_version")
    if not (isinstance(old, int) and isinstance(new, int) and old < new):
        return False
    return not shape_differences({**recorded, "schema_version": new}, wanted)


def _fill_added_keys(path: Path, recorded: dict[str, Any], wanted: Mapping[str, Any]) -> dict[str, Any]:
    """An archive recorded before a key existed gets it from this run (it cannot have been of another value
    that was never recorded); ``recorded`` as it now stands."""
    added = {key: wanted[key] for key in ADDED_LATER if key in wanted and key not in recorded}
    if not added or recorded.get("source") != wanted.get("source"):
        return recorded
    log.info("recording %s in %s", ", ".join(f"{key} {value!r}" for key, value in added.items()), path)
    storage.write_json_atomic(path, {**recorded, **added})
    return _read_shape(path)
