"""spxdl: a local, query-ready Parquet archive of SPX index options data from a ThetaData Terminal."""

__version__ = "0.1.0"
