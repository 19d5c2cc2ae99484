"""The house rules of docs/design.md, checked on the source: imports run downward, and each power has one home.

Every module of the package is found from the files. Each belongs to a layer (``LAYERS``, lowest
first, in the order of docs/design.md) and, inside a package, has a place in that package's
order (``PACKAGE_ORDER``); a module may import only from lower layers, or from lower members of
its own package. A module no layer names fails the test, so a new module is placed on purpose.
Imports made only for type checking (``if TYPE_CHECKING:``) are not dependencies at run time and
are not counted; relative imports are resolved.

Besides the order: only the CLI imports click, prints or writes to stdout/stderr; only the engine
starts processes or worker threads (the simulator, a server, aside); only storage and the ledger
write files; nothing in the download path imports the simulator, and the simulator imports only
errors, the calendar and the version; task and expiration states are named constants, never
string literals, outside their definitions. A module split into several keeps every name it held
importable from where callers import it.
"""

from __future__ import annotations

import ast
import importlib
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "spxdl"

LAYERS: list[set[str]] = [
    {"spxdl", "spxdl.errors"},
    {"spxdl.trading_calendar", "spxdl.datasets", "spxdl.procs", "spxdl.csvpages", "spxdl.logs", "spxdl.urls", "spxdl.lazy"},
    {"spxdl.config", "spxdl.checks", "spxdl.instants", "spxdl.sources"},
    {"spxdl.terminal", "spxdl.direct", "spxdl.storage", "spxdl.convert"},  # siblings: the sources, files and conversion never meet
    {"spxdl.archive_fs"},  # where the data lives: local disk (through storage) or an object store
    {"spxdl.ledger", "spxdl.metrics", "spxdl.shapes", "spxdl.calendars", "spxdl.capture", "spxdl.quality"},
    {"spxdl.audit"},
    {"spxdl.verify"},
    {"spxdl.engine"},
    {"spxdl.health", "spxdl.notify"},
    {"spxdl.cli"},
    {"spxdl.__main__"},
]
APART = {"spxdl.simulator"}  # the simulated terminal: its own world, below only errors and the calendar
# Inside a package, members in order (lowest first); ``__init__`` (the package itself) comes last.
PACKAGE_ORDER: dict[str, list[set[str]]] = {
    "spxdl.engine": [{"records", "forking"}, {"shared"}, {"streams", "planning", "recording", "fetchers", "metering", "links"},
                     {"download", "preparing"}, {"worker"}, {"serving", "dask_worker"}, {"processes"}, {"driving"},
                     {"dask_run"}, {"pool"}],
    "spxdl.cli": [{"base"}, {"suggesting", "dates"}, {"settings"}, {"options"}, {"render"}, {"progress", "notifying"},
                  {"archive", "doctor", "download", "service"}],
    "spxdl.terminal": [{"status"}, {"page"}, {"breaker"}, {"wire"}, {"adapter"}, {"connection"}, {"client"}],
    "spxdl.direct": [{"status"}, {"sdk"}, {"calls", "chunks"}, {"source"}],
    "spxdl.archive_fs": [{"base", "remote"}, {"local", "objects"}],
    "spxdl.ledger": [{"task"}, {"lock", "records", "claims"}, {"mirror"}, {"store"}, {"core"}, {"runs", "outcome"}],
    "spxdl.config": [{"settings"}, {"parsers"}, {"keys"}, {"loading"}],
    "spxdl.convert": [{"spec"}, {"normalize"}, {"reader"}, {"writer", "split", "recheck"}],
    "spxdl.health": [{"checks"}, {"answers", "direct"}, {"report"}, {"rows"}, {"doctor"}],
    "spxdl.trading_calendar": [{"rules"}, {"sessions"}, {"overrides"}],
    "spxdl.storage": [{"layout", "writes"}, {"verification"}],
    "spxdl.datasets": [{"schema"}, {"wire"}, {"catalogue"}],
}
CONCURRENCY = {"multiprocessing", "concurrent.futures", "subprocess"}
THREAD_HOMES = {"spxdl.engine", "spxdl.simulator"}  # may start threads (locks are allowed anywhere)
# The notify command ([notify] command) is the one process spxdl starts that is not a download worker: a
# user's shell line, run once after a run ends, from the CLI through spxdl.notify (subprocess only).
SUBPROCESS_HOMES = {"spxdl.notify": {"subprocess"}}
WRITERS = {"spxdl.storage", "spxdl.archive_fs", "spxdl.ledger"}
# Calls that write, move or delete files (``os.replace``, ``Path.write_bytes`` ...); ``x.replace`` alone is
# too often a string's or a dataclass's to count.
WRITE_CALLS = {"os.replace", "os.rename", "os.remove", "os.unlink", "os.truncate", "tempfile.mkstemp",
               "tempfile.NamedTemporaryFile", "shutil.move", "shutil.copyfile", "shutil.copy", "shutil.rmtree"}
WRITE_METHODS = {"write_text", "write_bytes", "unlink", "rename", "touch", "rmdir",
                 # pyarrow.fs: an object store's writes, moves and deletes
                 "open_output_stream", "open_append_stream", "delete_file", "delete_dir", "delete_dir_contents",
                 "copy_file", "move", "create_dir"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def unit_of(name: str) -> str:
    """The top-level module or package a module belongs to (``spxdl.engine.pool`` -> ``spxdl.engine``)."""
    parts = name.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else name


def layer_of(name: str) -> int | None:
    unit = unit_of(name)
    return next((index for index, members in enumerate(LAYERS) if unit in members), None)


def member_rank(name: str) -> int | None:
    """A module's place in its package's order; the package's ``__init__`` ranks above all members."""
    package, _, member = name.partition(".")[2].partition(".")
    order = PACKAGE_ORDER.get(f"spxdl.{package}")
    if order is None:
        return None
    if not member:
        return len(order)
    head = member.split(".")[0]
    return next((index for index, members in enumerate(order) if head in members), None)


# ---------------------------------------------------------------------------------------------
# reading a module


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node except those under ``if TYPE_CHECKING:`` (imports for type checkers only)."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(child) for stmt in node.body for child in ast.walk(stmt))
    return [node for node in ast.walk(tree) if id(node) not in skipped]


@dataclass(frozen=True)
class Source:
    name: str
    nodes: list[ast.AST]

    @classmethod
    def read(cls, name: str) -> "Source":
        return cls(name, _runtime_nodes(ast.parse(MODULES[name].read_text())))

    def _resolve(self, node: ast.ImportFrom) -> str:
        if not node.level:
            return node.module or ""
        package = self.name if MODULES[self.name].name == "__init__.py" else self.name.rpartition(".")[0]
        parts = package.split(".")[: len(package.split(".")) - node.level + 1]
        return ".".join(parts + ([node.module] if node.module else []))

    def imports(self) -> set[str]:
        """Every module imported (``from spxdl import x`` counts as ``spxdl.x`` when x is a module)."""
        found: set[str] = set()
        for node in self.nodes:
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = self._resolve(node)
                found.add(base)
                found.update(f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in MODULES)
        return found

    def spxdl_imports(self) -> set[str]:
        own = self.name
        return {name for name in self.imports() if name.split(".")[0] == "spxdl" and name != own
                and not (own.startswith(name + ".") and name != "spxdl")}

    def calls(self) -> list[ast.Call]:
        return [node for node in self.nodes if isinstance(node, ast.Call)]


def dotted(node: ast.AST) -> str:
    return ast.unparse(node)


def writes_files(source: Source) -> list[str]:
    """Calls that write, move or delete files: ``open`` in a writing mode, ``os.open`` for writing, and the like."""
    found = []
    for call in source.calls():
        name = dotted(call.func)
        leaf = name.rpartition(".")[2]
        mode = call.args[1] if len(call.args) > 1 else next((k.value for k in call.keywords if k.arg == "mode"), None)
        if leaf == "open" and name in ("open", "io.open") or name.endswith(".open") and name != "os.open":
            if isinstance(mode, ast.Constant) and isinstance(mode.value, str) and set(mode.value) & set("wax+"):
                found.append(f"{name}(..., {mode.value!r})")
        elif name == "os.open" and any(flag in dotted(call) for flag in ("O_WRONLY", "O_RDWR", "O_CREAT")):
            found.append(name)
        elif name in WRITE_CALLS or leaf in WRITE_METHODS:
            found.append(name)
    return found


def prints(source: Source) -> list[str]:
    found = []
    for call in source.calls():
        name = dotted(call.func)
        if name == "print" or name.startswith(("sys.stdout.", "sys.stderr.")):
            found.append(name)
    return found


def starts_threads(source: Source) -> list[str]:
    return [dotted(call.func) for call in source.calls() if dotted(call.func).endswith(("threading.Thread", "Timer"))]


# ---------------------------------------------------------------------------------------------
# the rules: each returns what ``source`` breaks (empty when it obeys)

PRODUCT = sorted(name for name in MODULES if unit_of(name) not in APART)


def order_violations(source: Source) -> list[str]:
    """Imports that go up or sideways against the layers and package orders."""
    found = []
    mine, my_unit = layer_of(source.name), unit_of(source.name)
    for target in sorted(source.spxdl_imports()):
        if unit_of(target) in APART:
            continue  # judged by simulator_violations
        if unit_of(target) == my_unit and my_unit in PACKAGE_ORDER:
            if (member_rank(target) or 0) >= (member_rank(source.name) or 0):
                found.append(f"{source.name} imports {target}: up or sideways inside {my_unit}")
        elif unit_of(target) != my_unit and (layer_of(target) is None or mine is None or layer_of(target) >= mine):
            found.append(f"{source.name} imports {target}: up or sideways (layer {layer_of(target)} >= {mine})")
    return found


def user_io_violations(source: Source) -> list[str]:
    """click or printing outside the CLI."""
    if unit_of(source.name) == "spxdl.cli" or source.name == "spxdl.__main__":
        return []
    found = ["imports click"] if "click" in source.imports() else []
    return found + [f"prints via {name}" for name in prints(source)]


def concurrency_violations(source: Source) -> list[str]:
    """Processes or threads started outside the engine (locks stay with the sources, the ledger and logs)."""
    unit = unit_of(source.name)
    if unit in THREAD_HOMES:
        return []
    allowed = SUBPROCESS_HOMES.get(unit, set())
    found = [f"imports {name}" for name in sorted(CONCURRENCY & source.imports()) if name not in allowed]
    found += [f"starts {name}" for name in starts_threads(source)]
    if "threading" in source.imports() and unit not in ("spxdl.terminal", "spxdl.direct", "spxdl.ledger", "spxdl.logs"):
        found.append("imports threading")
    return found


def file_write_violations(source: Source) -> list[str]:
    """Files written, moved or deleted outside storage and the ledger."""
    return [] if unit_of(source.name) in WRITERS else writes_files(source)


def simulator_violations(source: Source) -> list[str]:
    """Product code importing the simulator (the CLI may: --simulate, sim), or the simulator importing product code."""
    imported = source.spxdl_imports()
    if unit_of(source.name) in APART:
        outside = {t for t in imported if unit_of(t) not in APART}
        return sorted(outside - {"spxdl", "spxdl.errors", "spxdl.trading_calendar"})
    if unit_of(source.name) == "spxdl.cli":
        return []
    return sorted(t for t in imported if unit_of(t) in APART)


STATE_HOMES = {"spxdl.ledger.task", "spxdl.engine.records"}


def state_names() -> set[str]:
    from spxdl.engine.records import ResultState, RunState
    from spxdl.ledger.task import EXPIRATION_STATES, TASK_STATES, RunRecordState

    extra = {ResultState.HELD, ResultState.INTERRUPTED, RunState.COMPLETE, RunState.INCOMPLETE, RunState.INTERRUPTED,
             RunRecordState.RUNNING, RunRecordState.INTERRUPTED, RunRecordState.KILLED}
    return set(TASK_STATES) | set(EXPIRATION_STATES) | extra


def state_literal_violations(source: Source) -> list[str]:
    """Task, expiration and result states spelled as string literals outside their definitions."""
    if source.name in STATE_HOMES:
        return []
    names = state_names()
    return sorted({node.value for node in source.nodes
                   if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names})


@pytest.mark.parametrize("name", sorted(MODULES))
def test_every_module_has_a_place_in_the_design(name):
    if unit_of(name) in APART:
        return
    assert layer_of(name) is not None, f"{name}: add its unit to LAYERS (docs/design.md's order)"
    if unit_of(name) in PACKAGE_ORDER:
        assert member_rank(name) is not None, f"{name}: add it to PACKAGE_ORDER[{unit_of(name)!r}]"


@pytest.mark.parametrize(
    "rule", [order_violations, user_io_violations, concurrency_violations, file_write_violations,
             state_literal_violations],
    ids=lambda rule: rule.__name__,
)
@pytest.mark.parametrize("name", PRODUCT)
def test_product_modules_keep_the_house_rules(name, rule):
    assert rule(Source.read(name)) == []


@pytest.mark.parametrize("name", sorted(MODULES))
def test_the_simulator_and_the_download_path_stay_apart(name):
    assert simulator_violations(Source.read(name)) == []


BASE_UNITS = ("spxdl.errors", "spxdl.datasets", "spxdl.trading_calendar")


@pytest.mark.parametrize("name", [name for name in sorted(MODULES) if unit_of(name) in BASE_UNITS])
def test_base_modules_import_nothing_of_spxdl_but_errors(name):
    """A base unit (a module, or a package's members) imports nothing of spxdl but errors and itself."""
    outside = {target for target in Source.read(name).spxdl_imports() if unit_of(target) != unit_of(name)}
    assert outside <= {"spxdl.errors"}


def test_no_module_shadows_the_standard_library():
    assert "spxdl.calendar" not in MODULES  # would shadow the standard library's calendar


# ---------------------------------------------------------------------------------------------
# the rules bite: each of these injected violations is caught by the rule that guards it

INJECTED = [
    ("spxdl.storage", "from spxdl import ledger", order_violations),
    ("spxdl.ledger.core", "from spxdl import engine", order_violations),
    ("spxdl.engine.pool", "from spxdl.simulator import Simulator", simulator_violations),
    ("spxdl.terminal.client", "from .. import storage", order_violations),
    ("spxdl.convert", "import threading", concurrency_violations),
    ("spxdl.notify", "import multiprocessing", concurrency_violations),
    ("spxdl.audit", "import subprocess", concurrency_violations),
    ("spxdl.engine.pool", "import sys\nsys.stdout.write('x')", user_io_violations),
    ("spxdl.engine.dask_worker", "from spxdl.engine import dask_run", order_violations),
    ("spxdl.engine.links", "from spxdl.engine import worker", order_violations),
    ("spxdl.terminal.client", "open('x', 'wb')", file_write_violations),
    ("spxdl.audit", "fs.open_output_stream('bucket/key')", file_write_violations),
    ("spxdl.archive_fs.base", "from spxdl.archive_fs import objects", order_violations),
    ("spxdl.cli.render", "state = 'held'", state_literal_violations),
]


@pytest.mark.parametrize("name, code, rule", INJECTED, ids=[f"{n}: {c.splitlines()[-1]}" for n, c, _ in INJECTED])
def test_each_injected_violation_is_caught(name, code, rule):
    assert name in MODULES, f"{name} is gone: update INJECTED"
    source = Source.read(name)
    assert rule(source) == [], f"{name} already breaks {rule.__name__}"
    injected = Source(name, source.nodes + _runtime_nodes(ast.parse(code)))
    assert rule(injected), f"{code!r} in {name} went unnoticed by {rule.__name__}"


# ---------------------------------------------------------------------------------------------
# modules split in two or more keep every name they held importable from where it was

FORMER_NAMES: dict[str, str] = {
    "spxdl.trading_calendar": """
        AD_HOC_CLOSURES AD_HOC_EARLY_CLOSES AM_SETTLED_ROOTS CLOSED DAY_MS EARLY EARLY_SESSION_CLOSE
        FIRST_DATE FRI LAST_DATE MON NY OPEN RTH_END_MS RTH_START_MS SAT SESSION_CLOSE SESSION_KINDS
        SUN THU TUE TradingCalendar WED as_new_york as_reasons check_supported
        christmas_eve_early_close early_close easter_sunday independence_day_early_close
        is_trading_day last_complete_session last_weekday load_calendar nth_weekday observed
        observed_new_years_day override_error parse_override_date parse_override_line
        parse_overrides read_overrides_text rule_early_closes rule_holidays today_ny trading_days
    """,
    "spxdl.storage": """
        ARCHIVE_JSON CORRUPT_MARKER DAY_JSON FileInfo HASH_CHUNK INVENTORY_JSON LAST_RUN_JSON
        LOCK_FILE LOGS_DIR MOVE_ASIDE NO_SPACE_ERRNOS PARTITION RUNS_DIR SPOOL_DIR STATUS_JSON
        TEMP_MARKER TEMP_NAME UMASK append_csv_rows archive_json_path atomic_output
        create_bytes_once data_file_name data_file_path data_files dataset_dir day_file_name
        day_file_path day_json_path discard expiration_of fsync_dir inventory_path iter_task_dirs
        json_bytes last_run_path lock_path logs_dir make_temp move_aside no_space_is_disk_full
        parquet_rows run_record_path run_record_paths sha256_file spool_dir status_path
        sweep_temp_files task_dir temp_file_pid temp_prefix verify_parquet write_bytes_atomic
        write_json_atomic write_verified_parquet
    """,
    "spxdl.datasets": """
        APIS CONTRACT_FIELDS DATASETS DEFAULT_DATASET DIRECT_OPTIONAL DIRECT_RENAMES
        DIRECT_WIRE_TYPES Dataset EOD EOD_GREEKS F64 FIRST_ORDER_GREEKS GREEKS GREEKS_EOD
        GREEKS_SECOND_ORDER I32 I64 INDEX_PRICE INDEX_SYMBOLS INTERVALS NY_TZ OHLC OHLC_FIELDS
        OHLC_WIRE OPEN_INTEREST QUOTE QUOTE_FIELDS QUOTE_WIRE SECOND_ORDER_GREEKS TIME_FIELDS
        V2_CONTRACT V2_WIRE_TYPES V3_CONTRACT V3_RENAMES V3_WIRE_TYPES ZONED get_dataset interval_ms
        output_name
    """,
    "spxdl.cli.options": """
        CONFIRM_TRADING_DAYS SELECTION_FIELDS SIM_DATA_DIR SIM_DEFAULT_PROFILE SIM_DEMO_DAYS
        SIM_DEMO_MAX_DTE SIM_DEMO_MAX_DTE_BY_PROFILE SIM_PROFILES archive_defaults archive_flags
        build_settings calendar_for check_range comma_values configure_logging download_flags
        download_options is_simulated is_window no_session_message open_log_file parse_cli_date
        read_only recorded_shapes refuse_simulated_direct require_archive resolve_run_dates
        selection_options sim_flavor_option simulate_data_dir simulate_options simulated_terminal
        suggested terminal_calendar terminal_options
    """,
    "spxdl.terminal.client": """
        TerminalClient no_terminal_message
    """,
    "spxdl.ledger.core": """
        Ledger
    """,
    "spxdl.simulator.server": """
        Handler Outcome SIMULATOR_HEADER SimServer Simulator SimulatorApp WRITE_SLICE json_reply
        loopback_address write_chunks
    """,
}


@pytest.mark.parametrize("module", sorted(FORMER_NAMES))
def test_a_split_module_keeps_its_names_where_callers_import_them(module):
    imported = importlib.import_module(module)
    assert [name for name in FORMER_NAMES[module].split() if not hasattr(imported, name)] == []
