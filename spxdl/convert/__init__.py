"""CSV pages -> checked Arrow batches -> Parquet row groups, streaming, with checks counted per file.

One responsibility per module, each importing only those before it in this list:

- ``spec``: ``ConvertSpec`` (what one file holds) and ``ConvertResult`` (what its conversion saw);
- ``normalize``: wire columns to output columns per API version (units, rights, instants);
- ``reader``: ``Converter``, CSV pages (or the SDK's Arrow chunks) to checked output batches (the
  header, or the chunk's columns, checked first);
- ``writer``: batches to one Parquet file in row groups of an exact size (``write_parquet``);
- ``split``: one answer of every expiration of a day, split and checked per expiration;
- ``recheck``: a stored file's rows checked again (``spxdl verify --content``).

Every name below is importable from ``spxdl.convert``.
"""

from spxdl.convert.normalize import NORMALIZERS
from spxdl.convert.reader import GROUP_ROWS, NOT_STORED, NULL_VALUES, Converter, SourcePage, gathered, iter_batches
from spxdl.convert.spec import BLOCK_SIZE, VALIDATION_MODES, ConvertResult, ConvertSpec
from spxdl.convert.recheck import Recount, recount
from spxdl.convert.split import DayPart, DaySplit, split_by_expiration
from spxdl.convert.writer import (
    DICTIONARY_COLUMNS,
    STATISTICS_COLUMNS,
    RowGroupBuffer,
    file_metadata,
    write_batches,
    write_parquet,
    writer_options,
)

__all__ = [
    "BLOCK_SIZE",
    "DICTIONARY_COLUMNS",
    "GROUP_ROWS",
    "NORMALIZERS",
    "NOT_STORED",
    "NULL_VALUES",
    "STATISTICS_COLUMNS",
    "VALIDATION_MODES",
    "ConvertResult",
    "ConvertSpec",
    "Converter",
    "DayPart",
    "DaySplit",
    "Recount",
    "RowGroupBuffer",
    "SourcePage",
    "file_metadata",
    "gathered",
    "iter_batches",
    "recount",
    "split_by_expiration",
    "write_batches",
    "write_parquet",
    "writer_options",
]
