"""Discount codes in emails: a fixed code written in the scenario, or a unique code per contact from a pool.

A pool is the codes a shop generated (Shopify or WooCommerce bulk codes), loaded beforehand by `parcours codes
load`. Its items share one partition of the discount codes table (storage.DiscountCodeModel):

- `pool`: `loaded` (how many codes) and `claimed` (how many handed out);
- `seq#0000000001` ...: the n-th code loaded, so the next free code is found by its number, never by a scan;
- `code#CODE`: the code's number, and once handed out who got it (contact, when, scenario, execution);
- `contact#ID`: the code a contact got, so a retried Task or a later email of the series shows the same code.

Claiming is one atomic counter increment on `pool` (`claimed + 1`, only while `claimed < loaded`): two
concurrent claims get two numbers, hence two codes. Then one transaction writes `contact#ID` (only if absent) and
marks `code#CODE` (only if not yet given). A claim that loses a race for the same contact, or a crash between the
two writes, burns that number's code: it is never handed out, never handed out twice.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from pynamodb.connection import Connection
from pynamodb.exceptions import PynamoDBException, TransactWriteError
from pynamodb.transactions import TransactWrite

from shared.storage import DiscountCodeModel, StorageError, Tables, get_or_none, update_if

CODE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
POOL = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
LOW = 50  # fewer codes left than this: the send answers discount_low (metric DiscountPoolLow)
POOL_KEY = "pool"
CHUNK = 30  # codes per loading transaction: 2 items each plus the pool's counter, under DynamoDB's 100
RETRIES = 5


class DiscountPoolEmpty(RuntimeError):
    """No free code in the pool: the email does not go out without its code (its name is the Task's error)."""


class CodesFileError(ValueError):
    """A codes file that cannot be loaded: every problem, each with its line number."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Discount:
    code: str
    pool: str | None = None  # None: the scenario's fixed code
    left: int | None = None  # codes still free after this claim (a fresh claim from a pool only)

    @property
    def low(self) -> bool:
        return self.left is not None and self.left < LOW

    def context(self) -> dict[str, Any]:
        """What templates see as `discount`."""
        return {"code": self.code, "pool": self.pool}


@dataclass(frozen=True)
class Loaded:
    added: int
    already: int  # in the file and already in the pool: loading the same file twice adds nothing
    total: int


@dataclass(frozen=True)
class Status:
    total: int
    claimed: int

    @property
    def free(self) -> int:
        return self.total - self.claimed


class _Send(Protocol):
    @property
    def discount(self) -> dict[str, str] | None: ...
    @property
    def contact_id(self) -> str: ...
    @property
    def scenario(self) -> str: ...
    @property
    def execution(self) -> str: ...


def for_send(request: _Send, tables: Tables, now: datetime) -> Discount | None:
    """The code a send step shows: its fixed code, the contact's code from its pool (claimed on first use), or
    None when the step declares no discount."""
    spec = request.discount
    if not spec:
        return None
    if spec.get("code"):
        return Discount(code=str(spec["code"]))
    return claim(tables.discount_codes, str(spec["pool"]), request.contact_id, request.scenario, request.execution, now)


def _contact_key(contact_id: str) -> str:
    return f"contact#{contact_id}"


def _seq_key(seq: int) -> str:
    return f"seq#{seq:010d}"


def claim(
    model: type[DiscountCodeModel], pool: str, contact_id: str, scenario: str, execution: str, now: datetime
) -> Discount:
    """The contact's code from the pool: the one it already got, else the next free one; DiscountPoolEmpty if none."""
    given = get_or_none(model, pool, range_key=_contact_key(contact_id), consistent=True)
    if given is not None and given.code:
        return Discount(code=given.code, pool=pool)
    counter = model(pool=pool, key=POOL_KEY)
    if not update_if(
        counter, [model.claimed.add(1)], model.loaded.exists() & (model.claimed < model.loaded)
    ):  # nothing loaded, or everything handed out
        raise _empty(model, pool)
    number = int(counter.claimed)
    slot = get_or_none(model, pool, range_key=_seq_key(number), consistent=True)
    if slot is None or not slot.code:
        raise StorageError(f"discount pool {pool!r}: code number {number} is missing")
    code = slot.code
    record = model(
        pool=pool,
        key=_contact_key(contact_id),
        code=code,
        seq=number,
        contact_id=contact_id,
        claimed_at=now,
        scenario=scenario,
        execution=execution,
    )
    marked = model(pool=pool, key=f"code#{code}")
    try:
        with TransactWrite(connection=_connection(model)) as transaction:
            transaction.save(record, condition=model.key.does_not_exist())
            transaction.update(
                marked,
                actions=[
                    model.contact_id.set(contact_id),
                    model.claimed_at.set(now),
                    model.scenario.set(scenario),
                    model.execution.set(execution),
                ],
                condition=model.key.exists() & model.contact_id.does_not_exist(),
            )
    except TransactWriteError as error:
        reasons = error.cancellation_reasons or []
        if reasons and reasons[0] is not None and reasons[0].code == "ConditionalCheckFailed":
            # A concurrent claim for this contact won: its code is the contact's, this number's is burnt.
            again = get_or_none(model, pool, range_key=_contact_key(contact_id), consistent=True)
            if again is not None and again.code:
                return Discount(code=again.code, pool=pool)
        raise StorageError(f"discount pool {pool!r}: claiming code number {number} failed: {error}") from error
    except PynamoDBException as error:
        raise StorageError(str(error)) from error
    return Discount(code=code, pool=pool, left=int(counter.loaded) - number)


def _empty(model: type[DiscountCodeModel], pool: str) -> DiscountPoolEmpty:
    counter = get_or_none(model, pool, range_key=POOL_KEY, consistent=True)
    if counter is None or not counter.loaded:
        return DiscountPoolEmpty(
            f"discount pool {pool!r} has no codes: load them with `parcours codes load {pool} FILE`"
        )
    return DiscountPoolEmpty(
        f"discount pool {pool!r} is empty: its {int(counter.loaded)} codes were all handed out; load more with "
        f"`parcours codes load {pool} FILE`"
    )


def _connection(model: type[DiscountCodeModel]) -> Connection:
    meta: Any = model.Meta
    return Connection(region=meta.region, host=getattr(meta, "host", None))


def parse_codes(text: str, name: str) -> list[str]:
    """The codes of a file: one per line, or the first column of a CSV export (a `Code` header is skipped);
    blank lines are ignored. CodesFileError lists every bad line by number."""
    codes: list[str] = []
    first_seen: dict[str, int] = {}
    problems: list[str] = []
    for number, line in enumerate(text.lstrip("\ufeff").splitlines(), start=1):
        if not line.strip():
            continue
        cells = next(csv.reader([line]), [""])
        code = (cells[0] if cells else "").strip()
        if not codes and not problems and code.lower() in ("code", "codes", "discount code", "discount_code"):
            continue  # a CSV header
        if not CODE.match(code):
            problems.append(
                f"{name}:{number}: {code[:80]!r} is not a discount code: letters, digits, _ and -, at most 64"
            )
        elif code in first_seen:
            problems.append(f"{name}:{number}: {code} is repeated (first on line {first_seen[code]})")
        else:
            first_seen[code] = number
            codes.append(code)
    if not codes and not problems:
        problems.append(f"{name}: no discount code in the file (one code per line)")
    if problems:
        raise CodesFileError(problems)
    return codes


def check_pool(pool: str) -> None:
    if not POOL.match(pool):
        raise CodesFileError([f"pool {pool!r}: lower-case letters, digits and dashes, at most 40"])


def load(model: type[DiscountCodeModel], pool: str, codes: list[str], now: datetime) -> Loaded:
    """Adds the codes the pool does not have yet, numbered after its last one; loading again adds nothing.

    Each chunk is one transaction: its codes, their numbers and the pool's new count, all or nothing, the count
    conditioned on the one read (a concurrent load makes it start again from a fresh read)."""
    check_pool(pool)
    fresh = [code for code in codes if code not in _known(model, pool, codes)]
    added = 0
    for start in range(0, len(fresh), CHUNK):
        chunk = fresh[start : start + CHUNK]
        for attempt in range(RETRIES):
            counter = get_or_none(model, pool, range_key=POOL_KEY, consistent=True)
            loaded = int(counter.loaded or 0) if counter is not None else 0
            if attempt:
                chunk = [code for code in chunk if code not in _known(model, pool, chunk)]
            if _write_chunk(model, pool, chunk, loaded, counter is not None, now):
                added += len(chunk)
                break
        else:
            raise StorageError(f"discount pool {pool!r}: loading kept conflicting with another load; run it again")
    return Loaded(added=added, already=len(codes) - len(fresh), total=status(model, pool).total)


def _known(model: type[DiscountCodeModel], pool: str, codes: Iterable[str]) -> set[str]:
    keys = [(pool, f"code#{code}") for code in codes]
    try:
        return {str(item.code) for item in model.batch_get(keys, consistent_read=True, attributes_to_get=["code"])}
    except PynamoDBException as error:
        raise StorageError(str(error)) from error


def _write_chunk(
    model: type[DiscountCodeModel], pool: str, chunk: list[str], loaded: int, exists: bool, now: datetime
) -> bool:
    """False when a condition failed (a concurrent load): the caller reads again and retries."""
    if not chunk:
        return True
    try:
        with TransactWrite(connection=_connection(model)) as transaction:
            for offset, code in enumerate(chunk, start=1):
                seq = loaded + offset
                transaction.save(
                    model(pool=pool, key=f"code#{code}", code=code, seq=seq, loaded_at=now),
                    condition=model.key.does_not_exist(),
                )
                transaction.save(model(pool=pool, key=_seq_key(seq), code=code), condition=model.key.does_not_exist())
            total = loaded + len(chunk)
            if exists:
                transaction.update(
                    model(pool=pool, key=POOL_KEY), actions=[model.loaded.set(total)], condition=model.loaded == loaded
                )
            else:
                transaction.save(
                    model(pool=pool, key=POOL_KEY, loaded=total, claimed=0, loaded_at=now),
                    condition=model.key.does_not_exist(),
                )
    except TransactWriteError as error:
        reasons = error.cancellation_reasons or []
        if any(reason is not None and reason.code == "ConditionalCheckFailed" for reason in reasons):
            return False
        raise StorageError(str(error)) from error
    except PynamoDBException as error:
        raise StorageError(str(error)) from error
    return True


def status(model: type[DiscountCodeModel], pool: str) -> Status:
    counter = get_or_none(model, pool, range_key=POOL_KEY, consistent=True)
    if counter is None:
        return Status(total=0, claimed=0)
    return Status(total=int(counter.loaded or 0), claimed=int(counter.claimed or 0))


def answer(discount: Discount | None) -> dict[str, Any]:
    """What a send answers about its code: recorded in the execution history; `discount_low` feeds a metric."""
    if discount is None:
        return {}
    return {"discount_code": discount.code, **({"discount_low": True} if discount.low else {})}
