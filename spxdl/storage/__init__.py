"""Where things live on disk, and how files get there: atomically, verified, never half-written.

Laid out one responsibility per module, each importing only those above it in this list:

- ``layout``: the archive's layout (Hive-style partitions), every path and file name, walking it;
- ``writes``: atomic and durable writes, flocked appends, bad files moved aside, stale temp files swept;
- ``verification``: ``FileInfo``, Parquet footers read back, checksums.

Everything importable from ``spxdl.storage`` before it became a package still is.
"""

from spxdl.storage.layout import (
    ARCHIVE_JSON, DAY_JSON, INVENTORY_JSON, LAST_RUN_JSON, LOCK_FILE, LOGS_DIR, PARTITION, RUNS_DIR, SPOOL_DIR,
    STATUS_JSON, archive_json_path, data_file_name, data_file_path, data_files, dataset_dir, day_file_name,
    day_file_path, day_json_path, expiration_of, inventory_path, iter_task_dirs, last_run_path, lock_path,
    logs_dir, run_record_path, run_record_paths, spool_dir, status_path, task_dir,
)
from spxdl.storage.writes import (
    CORRUPT_MARKER, MOVE_ASIDE, NO_SPACE_ERRNOS, TEMP_MARKER, TEMP_NAME, UMASK, append_csv_rows, atomic_output,
    create_bytes_once, discard, fsync_dir, json_bytes, make_temp, move_aside, no_space_is_disk_full,
    sweep_temp_files, temp_file_pid, temp_prefix, write_bytes_atomic, write_json_atomic,
)
from spxdl.storage.verification import (
    HASH_CHUNK, FileInfo, parquet_rows, sha256_file, verify_parquet, write_verified_parquet,
)

__all__ = [
    "ARCHIVE_JSON", "CORRUPT_MARKER", "DAY_JSON", "HASH_CHUNK", "INVENTORY_JSON", "LAST_RUN_JSON", "LOCK_FILE",
    "LOGS_DIR", "MOVE_ASIDE", "NO_SPACE_ERRNOS", "PARTITION", "RUNS_DIR", "SPOOL_DIR", "STATUS_JSON",
    "TEMP_MARKER", "TEMP_NAME", "UMASK", "FileInfo", "append_csv_rows", "archive_json_path", "atomic_output",
    "create_bytes_once", "data_file_name", "data_file_path", "data_files", "dataset_dir", "day_file_name",
    "day_file_path", "day_json_path", "discard", "expiration_of", "fsync_dir", "inventory_path",
    "iter_task_dirs", "json_bytes", "last_run_path", "lock_path", "logs_dir", "make_temp", "move_aside",
    "no_space_is_disk_full", "parquet_rows", "run_record_path", "run_record_paths", "sha256_file", "spool_dir",
    "status_path", "sweep_temp_files", "task_dir", "temp_file_pid", "temp_prefix", "verify_parquet",
    "write_bytes_atomic", "write_json_atomic", "write_verified_parquet",
]
