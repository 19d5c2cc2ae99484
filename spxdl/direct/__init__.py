"""The direct source: ThetaData's market data through the thetadatadx-py SDK, no local server.

One responsibility per module, each importing only those before it in this list:

- ``status``: what the SDK's exceptions (and an answer without a row) mean in spxdl's errors;
- ``sdk``: loading the SDK (or one line on what to install), its credentials chain, its configuration;
- ``calls``: a history request as the SDK's method and parameters;
- ``chunks``: an SDK stream as an iterator of Arrow tables, one chunk at a time;
- ``source``: ``DirectSource``, which stands where a ``TerminalClient`` stands.

Every name below is importable from ``spxdl.direct``. The SDK itself is imported only when a
source connects, so importing this package costs nothing on a machine without it.
"""

from spxdl.direct.calls import HistoryCall, history_call
from spxdl.direct.sdk import MIN_PYTHON, PACKAGE, find_credentials, load_sdk, sdk_missing_reason
from spxdl.direct.source import API, DirectSource
from spxdl.direct.status import error_for, is_sdk_error, no_rows

__all__ = [
    "API",
    "MIN_PYTHON",
    "PACKAGE",
    "DirectSource",
    "HistoryCall",
    "error_for",
    "find_credentials",
    "history_call",
    "is_sdk_error",
    "load_sdk",
    "no_rows",
    "sdk_missing_reason",
]
