"""The group-commit scheduler (hours_ledger/groupcommit.py) on its own: which pushes are written together,
how many groups at once, and who gets which answer. The database side is the batch path's, tested in
tests/integration/ledger (test_batch.py, test_group_commit.py)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from hours_ledger.groupcommit import GroupCommit
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from xueshi_shared.iam.principal import Principal

KEYS = [Principal(id=uuid.UUID(int=i + 1), kind="base", name=f"base {i}", base_id=uuid.UUID(int=100 + i))
        for i in range(3)]
DIGESTS = [f"token {i}".encode() for i in range(3)]


class Tokens:
    """A `screen` for which the tokens in `revoked` are no longer live; remembers what it was asked."""

    def __init__(self, revoked: set[int] | None = None) -> None:
        self.revoked = {DIGESTS[i] for i in revoked or ()}
        self.asked: list[set[bytes]] = []

    async def __call__(self, pushes: list) -> list[dict | None]:
        self.asked.append({push.token_digest for push in pushes})
        return [{"status": 401, "revoked": True} if push.token_digest in self.revoked else None for push in pushes]


class Writer:
    """An `apply` that records each group (sender, record) and, while `hold` is clear, keeps it in flight."""

    def __init__(self, fail: set[str] | None = None) -> None:
        self.groups: list[list[tuple[uuid.UUID, str]]] = []
        self.in_flight = self.most_in_flight = 0
        self.hold = asyncio.Event()
        self.hold.set()
        self.fail = fail or set()

    async def __call__(self, senders: list[Principal], records: list[str]) -> list[dict]:
        self.groups.append([(p.id, r) for p, r in zip(senders, records, strict=True)])
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0)
            await self.hold.wait()
            if self.fail & set(records):
                raise ConnectionError("the database went away")
            return [{"status": 201, "result": f"{p.id}:{r}"} for p, r in zip(senders, records, strict=True)]
        finally:
            self.in_flight -= 1


def commit(writer: Writer, *, size: int, flushes: int, floor: int = 1, tokens: Tokens | None = None) -> GroupCommit:
    return GroupCommit(writer, tokens or Tokens(), size=size, flushes=flushes, floor=floor,
                       registry=CollectorRegistry())


def held(*, size: int, flushes: int, floor: int = 1, fail: set[str] | None = None) -> tuple[Writer, GroupCommit]:
    """A writer that keeps every group in flight until `writer.hold` is set, and its scheduler."""
    writer = Writer(fail)
    writer.hold.clear()
    return writer, commit(writer, size=size, flushes=flushes, floor=floor)


async def pushed(pushes: GroupCommit, *sent: tuple[int, str]) -> list[asyncio.Task]:
    """Start these pushes (key index, record), and let the groups they start reach the writer."""
    tasks = [asyncio.create_task(pushes.push(KEYS[key], DIGESTS[key], record)) for key, record in sent]
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    return tasks


async def test_pushes_arriving_while_groups_are_written_go_together_in_arrival_order():
    writer, pushes = held(size=50, flushes=1)
    (first,) = await pushed(pushes, (0, "a"))
    later = await pushed(pushes, *((i % 3, r) for i, r in enumerate("bcde")))
    assert writer.groups == [[(KEYS[0].id, "a")]], "the first push is written at once, alone"
    writer.hold.set()
    answers = await asyncio.gather(first, *later)
    assert writer.groups == [[(KEYS[0].id, "a")], [(KEYS[i % 3].id, r) for i, r in enumerate("bcde")]], \
        "the pushes that waited, from every base, in one group, in arrival order"
    assert [a["result"] for a in answers] == [f"{KEYS[0].id}:a"] + [f"{KEYS[i % 3].id}:{r}" for i, r in enumerate("bcde")]


async def test_a_group_holds_at_most_size_records_first_come_first_served():
    writer, pushes = held(size=3, flushes=1)
    (blocker,) = await pushed(pushes, (2, "z"))
    tasks = await pushed(pushes, *((i % 2, f"r{i}") for i in range(8)))
    writer.hold.set()
    await asyncio.gather(blocker, *tasks)
    assert [[r for _, r in group] for group in writer.groups] == [["z"], ["r0", "r1", "r2"], ["r3", "r4", "r5"],
                                                                   ["r6", "r7"]]


async def test_while_a_group_is_written_a_second_writer_starts_only_for_enough_records():
    writer, pushes = held(size=50, flushes=2, floor=3)
    (first,) = await pushed(pushes, (0, "a"))
    lone = await pushed(pushes, (1, "b"))
    assert writer.groups == [[(KEYS[0].id, "a")]], "a lone push waits for the writer in flight"
    more = await pushed(pushes, (1, "c"), (2, "d"))
    assert writer.groups[1] == [(KEYS[1].id, "b"), (KEYS[1].id, "c"), (KEYS[2].id, "d")], \
        "the floor reached, the second writer takes them"
    late = await pushed(pushes, (0, "e"))
    writer.hold.set()
    await asyncio.gather(first, *lone, *more, *late)
    assert writer.groups[2:] == [[(KEYS[0].id, "e")]], "the first writer to finish took the last one"
    assert writer.most_in_flight == 2


async def test_a_failed_group_fails_each_of_its_pushes_and_only_them():
    writer, pushes = held(size=2, flushes=2, fail={"bad"})
    tasks = await pushed(pushes, (0, "bad"), (1, "ok"))
    tasks += await pushed(pushes, (0, "x"), (0, "bad"), (0, "y"))
    writer.hold.set()
    answers = await asyncio.gather(*tasks, return_exceptions=True)
    assert [[r for _, r in group] for group in writer.groups] == [["bad"], ["ok"], ["x", "bad"], ["y"]]
    assert isinstance(answers[0], ConnectionError)
    assert answers[1]["result"] == f"{KEYS[1].id}:ok"
    assert isinstance(answers[2], ConnectionError) and isinstance(answers[3], ConnectionError), \
        "x shared its group with a failing record"
    assert answers[4]["result"] == f"{KEYS[0].id}:y"
    # The scheduler goes on: the writer slots were given back.
    assert (await pushes.push(KEYS[0], DIGESTS[0], "after"))["result"] == f"{KEYS[0].id}:after"


async def test_a_push_screened_out_is_refused_and_not_written():
    writer, tokens = Writer(), Tokens(revoked={1})
    writer.hold.clear()
    pushes = commit(writer, size=50, flushes=1, tokens=tokens)
    (first,) = await pushed(pushes, (0, "first"))
    later = await pushed(pushes, (0, "a"), (1, "b"), (2, "c"))
    writer.hold.set()
    answers = await asyncio.gather(first, *later)
    assert answers[2] == {"status": 401, "revoked": True}
    assert [a["result"] for a in (answers[0], answers[1], answers[3])] == [
        f"{KEYS[0].id}:first", f"{KEYS[0].id}:a", f"{KEYS[2].id}:c"]
    assert writer.groups == [[(KEYS[0].id, "first")], [(KEYS[0].id, "a"), (KEYS[2].id, "c")]], \
        "a revoked token's records never reach the writer"
    assert tokens.asked == [{DIGESTS[0]}, set(DIGESTS)], "each group is screened once, all its pushes together"
    assert await pushes.push(KEYS[1], DIGESTS[1], "alone") == {"status": 401, "revoked": True}
    assert len(writer.groups) == 2, "a group left empty is not written"


async def test_a_request_that_goes_away_does_not_cancel_its_group():
    writer, pushes = held(size=50, flushes=1)
    (blocker,) = await pushed(pushes, (0, "a"))
    leaving, staying = await pushed(pushes, (1, "gone"), (1, "kept"))
    leaving.cancel()
    writer.hold.set()
    assert (await staying)["result"] == f"{KEYS[1].id}:kept"
    await blocker
    with pytest.raises(asyncio.CancelledError):
        await leaving
    assert [(KEYS[1].id, "gone"), (KEYS[1].id, "kept")] in writer.groups, \
        "the cancelled request's record was still written"


@settings(max_examples=60, deadline=None)
@given(arrivals=st.lists(st.tuples(st.integers(0, 2), st.integers(0, 3)), min_size=1, max_size=60),
       size=st.integers(1, 8), flushes=st.integers(1, 4), floor=st.integers(1, 8),
       revoked=st.sets(st.integers(0, 2), max_size=2))
def test_every_push_gets_its_own_answer_in_groups_in_arrival_order(arrivals, size, flushes, floor, revoked):
    """Arrivals in waves (the second number: how many event-loop turns pass before the next push)."""

    async def scenario() -> None:
        writer, tokens = Writer(), Tokens(revoked)
        pushes = commit(writer, size=size, flushes=flushes, floor=floor, tokens=tokens)
        tasks = []
        for n, (key, pause) in enumerate(arrivals):
            tasks.append(asyncio.create_task(pushes.push(KEYS[key], DIGESTS[key], f"r{n}")))
            for _ in range(pause):
                await asyncio.sleep(0)
        answers = await asyncio.gather(*tasks)
        assert [a.get("result") for a in answers] == [
            None if k in revoked else f"{KEYS[k].id}:r{n}" for n, (k, _) in enumerate(arrivals)]
        assert all(a == {"status": 401, "revoked": True} for (k, _), a in zip(arrivals, answers, strict=True)
                   if k in revoked)
        assert writer.most_in_flight <= flushes
        assert all(1 <= len(group) <= size for group in writer.groups)
        # Groups are taken from the queue's head: together they are the arrivals of live tokens, in order.
        assert [push for group in writer.groups for push in group] == [
            (KEYS[k].id, f"r{n}") for n, (k, _) in enumerate(arrivals) if k not in revoked]

    asyncio.run(scenario())
