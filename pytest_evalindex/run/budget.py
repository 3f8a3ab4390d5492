"""Prices and the budget: what a request may cost before it is sent, and what it did cost.

With ``--index-budget USD`` every process of a run (serial, or each xdist worker) asks one
shared ledger before it sends a request. The ledger is a SQLite table beside the response
cache; a reservation is taken inside ``BEGIN IMMEDIATE``, so two processes never both see
room for the last request. A reservation holds the most the request can cost: a bound on
its prompt tokens at the input price plus its ``max_tokens`` at the output price. The
answer settles it to what its reported usage cost; an error releases it. When the next
request could take the run past the budget the ledger marks the run stopped, and from then
on no process of the run sends anything: the records not asked end as errors saying
"budget reached".

Judge verdicts are priced apart (``judge.pricing``). The verdicts asked while a record is
scored are kept on its sample (``judge_calls``), so the results can say what the judge
cost by dataset; they are noted only when the judge has prices, so a run without prices
writes the same document as before.
"""

from __future__ import annotations

import argparse
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import CancelledError, Future
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_evalindex.results.usage import answer_cost
from pytest_evalindex.run.cache import SharedDatabase
from pytest_evalindex.run.client import ModelError

if TYPE_CHECKING:
    from pytest_evalindex.results.schema import JudgeCall, Prices, Sample
    from pytest_evalindex.run.client import ChatClient, ModelAnswer

BUDGET_REACHED = "budget reached"
LEDGER_FILE = "budget.sqlite3"
# rows of runs older than this are dropped when a ledger is opened
KEEP_DAYS = 30
# chat templates add a few tokens around each message (role markers, separators)
MESSAGE_OVERHEAD_TOKENS = 8
MAX_TOKEN_KEYS = ("max_tokens", "max_completion_tokens")

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS holds (
        id INTEGER PRIMARY KEY,
        run TEXT NOT NULL,
        kind TEXT NOT NULL,
        held REAL NOT NULL,
        spent REAL NOT NULL DEFAULT 0,
        state TEXT NOT NULL,
        created REAL NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS holds_run ON holds (run)",
    """CREATE TABLE IF NOT EXISTS stops (
        run TEXT PRIMARY KEY,
        why TEXT NOT NULL,
        created REAL NOT NULL
    )""",
)


def parse_price(text: str) -> Prices:
    """``INPUT,OUTPUT`` (or ``INPUT,OUTPUT,CACHED_INPUT``), USD per million tokens."""
    parts = [p.strip() for p in str(text).split(",")]
    expected = "expected INPUT,OUTPUT in USD per million tokens (e.g. 0.50,1.50)"
    if len(parts) not in (2, 3):
        raise argparse.ArgumentTypeError(f"{expected}, got {text!r}")
    values: list[float] = []
    for part in parts:
        try:
            value = float(part)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{expected}, got {text!r}") from None
        if not (value >= 0 and value != float("inf")):
            raise argparse.ArgumentTypeError(f"{expected}; prices are 0 or more, got {text!r}")
        values.append(value)
    prices: Prices = {"input": values[0], "output": values[1]}
    if len(values) == 3:
        prices["cached_input"] = values[2]
    return prices


def max_tokens_of(generation: Mapping[str, Any]) -> int | None:
    """The bound a request puts on its answer, when its generation settings give one."""
    for key in MAX_TOKEN_KEYS:
        value = generation.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def prompt_token_bound(messages: list[dict[str, Any]]) -> int:
    """At least as many tokens as the prompt can have: byte-level tokenizers never make a
    token of less than one byte, so the UTF-8 length of the text bounds its count."""
    total = 0
    for message in messages:
        content = message.get("content")
        text = content if isinstance(content, str) else repr(content)
        total += len(text.encode("utf-8")) + MESSAGE_OVERHEAD_TOKENS
    return total + MESSAGE_OVERHEAD_TOKENS


class BudgetReached(ModelError):
    """The request was not sent: it could have taken the run past ``--index-budget``."""


def usd(value: float) -> str:
    return f"${value:.4f}"


def _forget_old_runs(conn: sqlite3.Connection) -> None:
    cutoff = time.time() - KEEP_DAYS * 86400
    conn.execute("DELETE FROM holds WHERE created < ?", (cutoff,))
    conn.execute("DELETE FROM stops WHERE created < ?", (cutoff,))


class Ledger:
    """What the processes of one run have spent and hold in flight, in SQLite."""

    def __init__(self, directory: Path, *, run: str, budget: float) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / LEDGER_FILE
        self.run = run
        self.budget = budget
        self._stopped: str | None = None  # this process's copy of the run's stop
        self._database = SharedDatabase(self.path, SCHEMA, prepare=_forget_old_runs)
        self._connect = self._database.connection

    def reserve(self, kind: str, amount: float) -> int:
        """Hold ``amount`` USD for a request about to be sent; raise BudgetReached (and stop
        the run) when spent + held + amount would pass the budget."""
        if self._stopped is not None:
            raise BudgetReached(self._stopped)
        conn = self._connect()
        conn.execute("BEGIN IMMEDIATE")
        try:
            stop = conn.execute("SELECT why FROM stops WHERE run = ?", (self.run,)).fetchone()
            if stop is None:
                spent, held = conn.execute(
                    "SELECT COALESCE(SUM(CASE WHEN state = 'held' THEN 0 ELSE spent END), 0),"
                    " COALESCE(SUM(CASE WHEN state = 'held' THEN held ELSE 0 END), 0)"
                    " FROM holds WHERE run = ?",
                    (self.run,),
                ).fetchone()
                if spent + held + amount <= self.budget:
                    cursor = conn.execute(
                        "INSERT INTO holds (run, kind, held, state, created)"
                        " VALUES (?, ?, ?, 'held', ?)",
                        (self.run, kind, amount, time.time()),
                    )
                    conn.execute("COMMIT")
                    assert cursor.lastrowid is not None
                    return cursor.lastrowid
                why = (
                    f"{BUDGET_REACHED}: --index-budget {usd(self.budget)} leaves no room for "
                    f"the next request ({usd(spent)} spent, {usd(held)} in flight, the next "
                    f"up to {usd(amount)}); not asked"
                )
                conn.execute(
                    "INSERT OR IGNORE INTO stops (run, why, created) VALUES (?, ?, ?)",
                    (self.run, why, time.time()),
                )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        # the requests after the one that would cross are simply not sent
        self._stopped = f"{BUDGET_REACHED} (--index-budget {usd(self.budget)}); not asked"
        raise BudgetReached(self._stopped if stop is not None else why)

    def settle(self, hold: int, cost: float) -> None:
        self._connect().execute(
            "UPDATE holds SET spent = ?, state = 'settled' WHERE id = ?", (cost, hold)
        )

    def release(self, hold: int) -> None:
        self._connect().execute(
            "UPDATE holds SET spent = 0, state = 'released' WHERE id = ?", (hold,)
        )

    def spent(self) -> float:
        """What the run's settled requests cost, in USD."""
        row = (
            self._connect()
            .execute(
                "SELECT COALESCE(SUM(spent), 0) FROM holds WHERE run = ? AND state = 'settled'",
                (self.run,),
            )
            .fetchone()
        )
        return float(row[0])

    def close(self) -> None:
        self._database.close()


class Meter:
    """Sends a request only when the ledger has room for the most it can cost."""

    def __init__(self, ledger: Ledger, prices: Prices, *, kind: str) -> None:
        self.ledger = ledger
        self.prices = prices
        self.kind = kind

    def most_it_costs(self, client: ChatClient, messages: list[dict[str, Any]]) -> float:
        limit = max_tokens_of(client.generation)
        if limit is None:
            # preflight refuses a budget without max_tokens; a user's own client may not
            raise ModelError(
                f"{BUDGET_REACHED} cannot be guarded: the {self.kind}'s requests set no "
                "max_tokens, so their cost has no bound; not asked"
            )
        usage = {"prompt_tokens": prompt_token_bound(messages), "completion_tokens": limit}
        return answer_cost(usage, self.prices)

    async def achat(self, client: ChatClient, messages: list[dict[str, Any]]) -> ModelAnswer:
        """``chat`` on the event loop: the ledger's SQLite work (which may wait for another
        process's transaction) runs in an executor thread, never on the loop."""
        import asyncio

        loop = asyncio.get_running_loop()
        estimate = self.most_it_costs(client, messages)
        hold = await loop.run_in_executor(None, self.ledger.reserve, self.kind, estimate)
        try:
            answer = await client.achat(messages)
        except BaseException:
            await loop.run_in_executor(None, self.ledger.release, hold)
            raise
        cost = answer_cost(answer.usage, self.prices) if answer.usage else estimate
        await loop.run_in_executor(None, self.ledger.settle, hold, cost)
        return answer

    def chat(self, client: ChatClient, messages: list[dict[str, Any]]) -> ModelAnswer:
        estimate = self.most_it_costs(client, messages)
        hold = self.ledger.reserve(self.kind, estimate)
        try:
            answer = client.chat(messages)
        except BaseException:
            self.ledger.release(hold)
            raise
        # a server that reports no usage is charged the most the request could cost
        cost = answer_cost(answer.usage, self.prices) if answer.usage else estimate
        self.ledger.settle(hold, cost)
        return answer


# ---------------------------------------------------------------- judge calls of a sample

_collecting = threading.local()


@contextmanager
def judge_calls_into(sample: Sample) -> Iterator[None]:
    """Keep the priced judge verdicts asked in this thread, while the block runs, on
    ``sample["judge_calls"]`` (nothing is added when there were none)."""
    calls: list[JudgeCall] = []
    previous = getattr(_collecting, "calls", None)
    _collecting.calls = calls
    try:
        yield
    finally:
        _collecting.calls = previous
        if calls:
            sample["judge_calls"] = [*sample.get("judge_calls", []), *calls]


def note_judge_call(answer: ModelAnswer, prices: Prices | None) -> None:
    """Record a verdict on the sample being scored in this thread, when the judge has
    prices. A cached verdict costs nothing now; ``cost`` is what it cost when asked."""
    calls: list[JudgeCall] | None = getattr(_collecting, "calls", None)
    if calls is None or prices is None:
        return
    usage = {k: int(v) for k, v in answer.usage.items()}
    calls.append(
        {"usage": usage, "cached": answer.cached, "cost": answer_cost(usage, prices)}  # type: ignore[typeddict-item]
    )


def keeping_judge_calls(scorer: Callable[..., Any], *args: Any) -> tuple[Any, list[JudgeCall]]:
    """Run a scorer in a background thread (scoring ahead) and return its score with the
    priced verdicts it asked for; a failure carries them on the exception."""
    calls: list[JudgeCall] = []
    previous = getattr(_collecting, "calls", None)
    _collecting.calls = calls
    try:
        return scorer(*args), calls
    except BaseException as exc:
        exc.evalindex_judge_calls = calls  # type: ignore[attr-defined]
        raise
    finally:
        _collecting.calls = previous


def score_kept(future: Future[tuple[Any, list[JudgeCall]]]) -> Any:
    """The score of :func:`keeping_judge_calls`, its verdicts handed to the sample being
    scored in this thread (raising what the scorer raised)."""
    current: list[JudgeCall] | None = getattr(_collecting, "calls", None)
    try:
        score, calls = future.result()
    except CancelledError:
        raise
    except BaseException as exc:
        if current is not None:
            current.extend(getattr(exc, "evalindex_judge_calls", ()))
        raise
    if current is not None:
        current.extend(calls)
    return score
