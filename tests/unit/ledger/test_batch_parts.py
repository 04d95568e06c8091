"""How the batch endpoint splits a batch into independent transactions (intake.chunks)."""

from __future__ import annotations

import uuid

from hours_ledger import schemas
from hours_ledger.intake import chunks
from hypothesis import given
from hypothesis import strategies as st

COURSE = uuid.uuid4()


def record(person: int, external: int) -> schemas.RecordIn:
    return schemas.RecordIn.model_construct(external_id=f"e{external}", course_id=COURSE, id_type="RIC",
                                            id_number=f"35010219900307{person:04d}", name="学员")


@given(st.lists(st.tuples(st.integers(0, 12), st.integers(0, 40)), max_size=120), st.integers(1, 30))
def test_parts_keep_each_person_and_each_external_id_together_in_batch_order(pairs, size):
    records = [(i, record(p, e)) for i, (p, e) in enumerate(pairs)]
    parts = chunks(records, size)
    placed = [index for part in parts for index, _ in part]
    assert sorted(placed) == list(range(len(records)))  # each record exactly once
    home = {index: n for n, part in enumerate(parts) for index, _ in part}
    for key in (lambda r: r.id_number, lambda r: r.external_id):
        seen: dict[str, int] = {}
        for index, r in records:
            assert seen.setdefault(key(r), home[index]) == home[index]  # one part per person, per external id
    for part in parts:
        assert [index for index, _ in part] == sorted(index for index, _ in part)  # batch order kept
    # A part exceeds `size` only when it holds a single linked group (records joined by person or external id).
    component = list(range(len(records)))

    def find(i: int) -> int:
        while component[i] != i:
            i = component[i]
        return i

    for a, (_, ra) in enumerate(records):
        for b, (_, rb) in enumerate(records[:a]):
            if ra.id_number == rb.id_number or ra.external_id == rb.external_id:
                component[find(a)] = find(b)
    for part in parts:
        if len(part) > size:
            assert len({find(i) for i, _ in part}) == 1


def test_unrelated_records_fill_parts_of_the_given_size():
    records = [(i, record(i, i)) for i in range(120)]
    assert [len(p) for p in chunks(records, 50)] == [50, 50, 20]
