"""The worker processes of a run, from the parent's side: started early, set up, given tasks, watched.

A ``Crew`` is one generation of worker processes (``serving.serve``) and what they share: the
in-flight semaphore and the event queue. The parent starts it before it has found the terminal
(the first worker takes a moment to import Arrow: workers come from multiprocessing's fork server,
which imports their code once and forks each from it), sends ``setup`` once it knows the terminal,
then hands out tasks: up to ``threads + 1`` per process, each to the process with the fewest. Each
process answers through a pipe of its own (``("started", task)`` once a task is claimed, then its
``TaskResult``), so a process killed in the middle of an answer spoils only its own pipe.

A process that dies breaks the crew: the parent kills the others (one killed while it held the
event queue's or the semaphore's lock leaves that lock taken for good) and starts another crew.
The dead process's tasks fail; those the others had started run again in the next crew.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from dataclasses import dataclass, field
from datetime import date
from multiprocessing.connection import Connection, wait
from typing import Any, Callable, Mapping

from spxdl.config import Settings
from spxdl.engine.records import TaskResult
from spxdl.engine.forking import signals_blocked
from spxdl.engine.shared import SharedFlag
from spxdl.ledger import Task

log = logging.getLogger(__name__)

JOIN_SECONDS = 5.0  # how long a closing crew waits for each process to exit before killing it


@dataclass
class Member:
    """One worker process, the pipe to it, its tasks (task -> whether it said it started) and the
    shares of other workers' tasks it helps with (task -> its expirations, None once sent)."""

    process: Any
    pipe: Connection
    tasks: dict[Task, bool] = field(default_factory=dict)
    helping: dict[Task, tuple | None] = field(default_factory=dict)
    gone: bool = False  # its pipe failed: it died, or is dying

    @property
    def load(self) -> int:
        return len(self.tasks) + len(self.helping)


@dataclass(frozen=True)
class Answer:
    """What a worker said: a task ``started``, its ``result``, or a helper's ``outcomes``."""

    member: Member
    task: Task
    result: TaskResult | None = None
    started: bool = False  # the task had started (for a result) / it starts now (alone)
    outcomes: list | None = None  # a helper's outcomes for its share


@dataclass
class Lost:
    """What a broken crew leaves: its last answers, and its tasks without a result: started in a
    process that died (``dead``), started in one the parent killed with the crew (``cut``), not
    started (``waiting``)."""

    answers: list[Answer] = field(default_factory=list)
    dead: list[Task] = field(default_factory=list)
    cut: list[Task] = field(default_factory=list)
    waiting: list[Task] = field(default_factory=list)


class Crew:
    """One generation of worker processes: start, set up, hand out tasks, collect answers, end."""

    def __init__(self, context: Any, settings: Settings, stop: SharedFlag, processes: int, log_level: int) -> None:
        self.events = context.Queue()  # progress events and log records, for the parent's drain thread
        self.in_flight = context.BoundedSemaphore(settings.max_in_flight)
        self.tasks_per_worker = settings.worker_threads + 1
        init_args = (settings, self.in_flight, stop, self.events, os.getpid(), log_level, dict(os.environ))
        self.members = [self._start(context, init_args) for _ in range(processes)]
        self.answered = False  # some process said a task started or finished
        self.closed = False

    def _start(self, context: Any, init_args: tuple) -> Member:
        parent_end, child_end = context.Pipe()
        process = context.Process(
            target=serve, args=(child_end, init_args, self.tasks_per_worker), name="spxdl-worker"
        )
        with signals_blocked():  # a worker starts with them blocked, then ignores them
            process.start()
        child_end.close()  # only the child holds its end: its death reads as the end of the pipe
        return Member(process, parent_end)

    # -- telling ----------------------------------------------------------------------------

    def setup(self, settings: Settings, listed: Mapping[str, list[date]]) -> None:
        """Every process: the resolved settings and the expirations the parent listed per root."""
        for member in self.members:
            self._send(member, ("setup", settings, dict(listed)))

    def free_member(self) -> Member | None:
        """The live process with the fewest tasks, if it can take another."""
        live = [m for m in self.members if not m.gone and m.load < self.tasks_per_worker]
        return min(live, key=lambda member: member.load, default=None)

    def idle_members(self, besides: Member) -> list[Member]:
        """Live processes with nothing to do (``besides`` aside): helpers for a task's shares."""
        return [m for m in self.members if m is not besides and not m.gone and not m.load]

    def assign(self, member: Member, task: Task, args: tuple) -> bool:
        """Hand ``task`` to ``member``; False if its pipe is broken (the task was not handed out)."""
        if not self._send(member, ("task", task, *args)):
            return False
        member.tasks[task] = False
        return True

    def reserve(self, helper: Member, task: Task, expirations: tuple) -> None:
        """Keep ``helper`` for a share of ``task``, sent once its owner has claimed it (``help``)."""
        helper.helping[task] = expirations

    def help(self, task: Task, args: tuple, owner: Member) -> None:
        """Send the reserved shares of ``task``, now claimed by ``owner``, to their helpers."""
        for member in self.members:
            expirations = member.helping.get(task)
            if expirations is not None:
                member.helping[task] = None
                self._send(member, ("help", task, *args, expirations, owner.process.pid))

    def forward(self, task: Task, outcomes: list) -> None:
        """A helper's outcomes, to the worker that claimed ``task`` (if it still waits)."""
        for member in self.members:
            if member.tasks.get(task):
                self._send(member, ("helped", task, outcomes))

    def unreserve(self, task: Task) -> None:
        """``task`` is over: its shares not sent yet are not needed (those sent are answered still)."""
        for member in self.members:
            if member.helping.get(task) is not None:
                del member.helping[task]

    def _send(self, member: Member, message: object) -> bool:
        try:
            member.pipe.send(message)
        except OSError as exc:
            log.debug("worker %s: cannot send (%s)", member.process.pid, exc)
            member.gone = True
            return False
        return True

    # -- hearing ----------------------------------------------------------------------------

    def receive(self, timeout: float) -> list[Answer]:
        """What the workers said within ``timeout``."""
        pipes = {member.pipe: member for member in self.members if not member.gone}
        answers: list[Answer] = []
        for pipe in wait(list(pipes), timeout):
            answers += self._read(pipes[pipe])
        return answers

    def _read(self, member: Member) -> list[Answer]:
        """Everything ``member`` has sent so far; a broken pipe marks it gone."""
        answers: list[Answer] = []
        try:
            while member.pipe.poll():
                message = member.pipe.recv()
                self.answered = True
                if isinstance(message, TaskResult):
                    started = member.tasks.pop(message.task, False)
                    answers.append(Answer(member, message.task, result=message, started=started))
                elif message[0] == "started":
                    member.tasks[message[1]] = True
                    answers.append(Answer(member, message[1], started=True))
                else:  # ("helped", task, outcomes)
                    member.helping.pop(message[1], None)
                    answers.append(Answer(member, message[1], outcomes=message[2]))
        except (EOFError, OSError):  # it died, perhaps part-way through a message
            member.gone = True
        return answers

    def outstanding(self) -> int:
        """Tasks handed out whose result has not come back, and shares sent and not answered."""
        return sum(len(m.tasks) + sum(sent is None for sent in m.helping.values()) for m in self.members)

    def died(self) -> bool:
        """Whether a process of the crew has ended (or its pipe broke) while the crew runs."""
        return bool(self.dead())

    def dead(self) -> list[Member]:
        """The processes that have ended, or whose pipe broke, so far."""
        return [member for member in self.members if member.gone or member.process.exitcode is not None]

    def lost(self, dead: list[Member]) -> Lost:
        """After a death (``dead``: the processes that died before the crew was killed), every
        process read to the end: what it still said, and its tasks without a result (shares are
        dropped)."""
        lost = Lost()
        for member in self.members:
            lost.answers += self._read(member)
            for task, began in member.tasks.items():
                if not began:
                    lost.waiting.append(task)
                elif member in dead:
                    lost.dead.append(task)
                else:
                    lost.cut.append(task)
            member.tasks.clear()
            member.helping.clear()
        return lost

    # -- ending -----------------------------------------------------------------------------

    def kill(self) -> None:
        """SIGKILL every process (their temp files are swept at the next start)."""
        for member in self.members:
            with contextlib.suppress(OSError, ValueError):
                member.process.kill()

    def discard(self) -> None:
        """Kill and close the crew, unless it was closed already (a crew the run never used)."""
        if not self.closed:
            self.kill()
            self.close()

    def close(self) -> None:
        """Tell every process to end, wait for it (killing one that does not), release the pipes."""
        self.closed = True
        for member in self.members:
            if not member.gone and member.process.exitcode is None:
                self._send(member, None)
        for member in self.members:
            member.process.join(JOIN_SECONDS)
            if member.process.exitcode is None:
                log.warning("worker %s did not exit; killing it", member.process.pid)
                member.process.kill()
                member.process.join()
            member.pipe.close()


class CrewStart:
    """A crew being started on a thread of its own: the first worker waits for the fork server to
    finish loading, and the parent finds the terminal meanwhile (``crew`` waits for it)."""

    def __init__(self, start: Callable[[], Crew]) -> None:
        self._crew: Crew | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._start, args=(start,), name="spxdl-crew-start", daemon=True)
        self._thread.start()

    def _start(self, start: Callable[[], Crew]) -> None:
        try:
            self._crew = start()
        except BaseException as exc:  # raised again where the crew is wanted
            self._error = exc

    def crew(self) -> Crew:
        """The crew, once every process has started; what starting it raised, raised here."""
        crew = self.started()
        if crew is None:
            raise self._error  # type: ignore[misc]  # set whenever no crew was made
        return crew

    def started(self) -> Crew | None:
        """The crew once started, or None if starting it failed (an error already on its way wins)."""
        self._thread.join()
        return self._crew


def serve(inbox: Connection, init_args: tuple, tasks_at_once: int) -> None:
    """A worker process's entry point: ``serving.serve``, imported here, in the worker (the fork
    server has it loaded already), so that the parent never imports the worker's code (Arrow's
    converter, HTTP) before it starts its workers."""
    from spxdl.engine import serving

    serving.serve(inbox, init_args, tasks_at_once)
