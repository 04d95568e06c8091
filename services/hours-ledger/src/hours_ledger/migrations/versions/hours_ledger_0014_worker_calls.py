"""The ledger's two calls for Citus: a worker reads, and writes, the rows of a group of people in one call

Revision ID: hours_ledger_0014
Revises: hours_ledger_0013

On a Citus cluster (`xueshi db citus --apply` distributes both by their first argument, colocated with `people`) a
call runs on the worker that holds that person's shard, and its statements run there, on that worker's shards, as
one local transaction (deploy/scale-out.md). intake.py sends one pair of calls for each worker's people of a set:

- read_people: the people's chain heads and names, and each person's state (busy sittings, day totals, what was
  credited per topic and course) over the set's span: the same reads as intake.py's LOCK_PEOPLE and _STATES, without
  a lock. Not the replays: a record of the same key written since the set's first step is refused at the write by
  record_keys' primary key, and the set's people are then decided again under their locks, replays read.
- write_people: locks the people in person-id order, and writes the set's rows (the same rows as intake.py's
  _WRITE, in the same order of arguments after the first three) for every person whose chain head is still the one
  read. Every change of a person's ledger appends an entry (credit, reversal, rename), so an unchanged head means
  an unchanged state; the others (returned, nothing written for them) are decided again under their lock.

Plain PostgreSQL does not call them (intake.py writes a set in one statement there); they are created everywhere so
that one schema serves both.
"""

from alembic import op

revision = "hours_ledger_0014"
down_revision = "hours_ledger_0013"
branch_labels = None
depends_on = None

READ = """
CREATE FUNCTION hours_ledger.read_people(
    p bigint, pids bigint[],
    st_pid bigint[], st_year smallint[], st_lo timestamptz[], st_hi timestamptz[], st_dlo date[], st_dhi date[])
RETURNS jsonb LANGUAGE plpgsql AS $fn$
DECLARE
    q bigint; i int; yr smallint; lo timestamptz; hi timestamptz; dlo date; dhi date;
    people jsonb; states jsonb := '[]';
BEGIN
    -- the heads: one read over the worker's shards of these people
    SELECT coalesce(jsonb_agg(jsonb_build_object('id', id, 'entry_count', entry_count,
                                                 'last_hash', encode(last_hash, 'hex'), 'name', name)), '[]')
    INTO people FROM hours_ledger.people WHERE id = ANY (pids);
    -- each state read names one person (q): on Citus it runs on that person's shard; and it takes its values from
    -- scalar variables (Citus 13.2 crashed planning an UPDATE with array elements in it: see write_people)
    FOR i IN 1 .. coalesce(cardinality(st_pid), 0) LOOP
        q := st_pid[i]; yr := st_year[i]; lo := st_lo[i]; hi := st_hi[i]; dlo := st_dlo[i]; dhi := st_dhi[i];
        states := states || (
            SELECT jsonb_build_object('pid', q, 'year', yr, 'starts', busy.starts, 'ends', busy.ends,
                                      'days', d.days, 'day_seconds', d.day_seconds, 'topics', used.topics,
                                      'topic_hours', used.topic_hours, 'courses', used.courses,
                                      'course_hours', used.course_hours)
            FROM (
              SELECT coalesce(array_agg(extract(epoch FROM s.started_at)::bigint ORDER BY s.started_at), '{}') AS starts,
                     coalesce(array_agg(extract(epoch FROM s.ended_at)::bigint ORDER BY s.started_at), '{}') AS ends
              FROM hours_ledger.sittings s
              JOIN hours_ledger.records r ON r.person_id = s.person_id AND r.year = s.year AND r.id = s.record_id
              WHERE s.person_id = q AND r.person_id = q AND r.reversed_at IS NULL
                AND s.started_at < hi AND s.started_at > lo - interval '1 day'
                AND s.ended_at > lo) AS busy,
            (
              SELECT coalesce(array_agg(pd.day ORDER BY pd.day), '{}') AS days,
                     coalesce(array_agg(pd.seconds ORDER BY pd.day), '{}') AS day_seconds
              FROM hours_ledger.person_days pd
              WHERE pd.person_id = q AND pd.day BETWEEN dlo AND dhi) AS d,
            (
              SELECT coalesce(array_agg(u.topic) FILTER (WHERE u.per_topic AND u.topic IS NOT NULL), '{}') AS topics,
                     coalesce(array_agg(u.hours) FILTER (WHERE u.per_topic AND u.topic IS NOT NULL), '{}') AS topic_hours,
                     coalesce(array_agg(u.course_id) FILTER (WHERE NOT u.per_topic), '{}') AS courses,
                     coalesce(array_agg(u.hours) FILTER (WHERE NOT u.per_topic), '{}') AS course_hours
              FROM (SELECT r.topic, r.course_id, sum(r.credited_hours)::int AS hours,
                           GROUPING(r.course_id) = 1 AS per_topic
                    FROM hours_ledger.records r
                    WHERE r.person_id = q AND r.year = yr AND r.reversed_at IS NULL AND r.credited_hours > 0
                    GROUP BY GROUPING SETS ((r.topic), (r.course_id))) u) AS used);
    END LOOP;
    RETURN jsonb_build_object('people', people, 'states', states);
END
$fn$"""

WRITE = """
CREATE FUNCTION hours_ledger.write_people(
    p bigint, e_pid bigint[], e_count int[],
    r_base uuid[], now_ timestamptz, r_id uuid[], r_ext text[], r_pid bigint[], r_course uuid[], r_year smallint[],
    r_category text[], r_topic text[], r_field text[], r_hours smallint[], r_mode text[], r_unit_name text[],
    r_uscc text[], r_region text[], r_exam text[], r_counted int[], r_credited smallint[], r_status text[],
    r_adjustments text[], r_digest bytea[],
    s_pid bigint[], s_year smallint[], s_rid uuid[], s_start timestamptz[], s_end timestamptz[], s_media int[],
    s_passed int[], s_failed int[],
    a_pid bigint[], a_year smallint[], a_rid uuid[], a_day date[], a_start timestamptz[], a_end timestamptz[],
    d_pid bigint[], d_day date[], d_seconds int[],
    n_actor uuid[], n_pid bigint[], n_seq int[], n_rid uuid[], n_hours smallint[], n_seconds int[], n_prev bytea[],
    n_hash bytea[],
    h_pid bigint[], h_seq int[], h_hash bytea[], s_mode text[], h_name text[], n_facts text[])
RETURNS bigint[] LANGUAGE plpgsql AS $fn$
DECLARE
    q bigint; i int; stale bigint[] := '{}'; seq int; head bytea; fixed text;
BEGIN
    -- the locks, in person-id order (e_pid ascending); a head that moved since it was read: that person is left out
    FOR i IN 1 .. coalesce(cardinality(e_pid), 0) LOOP
        q := e_pid[i]; seq := e_count[i];
        PERFORM 1 FROM hours_ledger.people WHERE id = q AND entry_count = seq FOR UPDATE;
        IF NOT FOUND THEN
            stale := stale || q;
        END IF;
    END LOOP;
    INSERT INTO hours_ledger.records (id, base_id, external_id, person_id, course_id, year, category, topic, field,
      course_hours, mode, unit_name, unit_uscc, unit_region, exam, counted_seconds, credited_hours, status,
      adjustments, created_at)
    SELECT u.id, u.base, u.ext, u.pid, u.course, u.year, u.category, u.topic, u.field, u.hours, u.mode,
           u.unit_name, u.uscc, u.region, u.exam::jsonb, u.counted, u.credited, u.status, u.adjustments::jsonb, now_
    FROM unnest(r_base, r_id, r_ext, r_pid, r_course, r_year, r_category, r_topic, r_field, r_hours, r_mode,
                r_unit_name, r_uscc, r_region, r_exam, r_counted, r_credited, r_status, r_adjustments)
      AS u(base, id, ext, pid, course, year, category, topic, field, hours, mode, unit_name, uscc, region, exam,
           counted, credited, status, adjustments)
    WHERE u.pid <> ALL (stale);
    INSERT INTO hours_ledger.record_keys (base_id, external_id, request_hash, person_id, year, record_id)
    SELECT u.base, u.ext, u.digest, u.pid, u.year, u.id
    FROM unnest(r_base, r_id, r_ext, r_pid, r_year, r_digest) AS u(base, id, ext, pid, year, digest)
    WHERE u.pid <> ALL (stale);
    INSERT INTO hours_ledger.statistics_queue (person_id, year, record_id, change)
    SELECT u.pid, u.year, u.id, 'credit' FROM unnest(r_pid, r_year, r_id) AS u(pid, year, id)
    WHERE u.pid <> ALL (stale);
    INSERT INTO hours_ledger.sittings (person_id, year, record_id, started_at, ended_at, media_seconds,
      identity_passed, identity_failed, mode)
    SELECT * FROM unnest(s_pid, s_year, s_rid, s_start, s_end, s_media, s_passed, s_failed, s_mode)
      AS u(pid, year, rid, s, e, media, passed, failed, mode)
    WHERE u.pid <> ALL (stale);
    INSERT INTO hours_ledger.allocations (person_id, year, record_id, day, started_at, ended_at, seconds)
    SELECT u.pid, u.year, u.rid, u.d, u.s, u.e, extract(epoch FROM u.e - u.s)::int
    FROM unnest(a_pid, a_year, a_rid, a_day, a_start, a_end) AS u(pid, year, rid, d, s, e)
    WHERE u.pid <> ALL (stale);
    INSERT INTO hours_ledger.person_days AS pd (person_id, day, seconds)
    SELECT * FROM unnest(d_pid, d_day, d_seconds) AS u(pid, day, seconds)
    WHERE u.pid <> ALL (stale)
    ON CONFLICT (person_id, day) DO UPDATE SET seconds = pd.seconds + EXCLUDED.seconds;
    INSERT INTO hours_ledger.entries (person_id, seq, record_id, kind, hours, seconds, actor_id, reason,
      recorded_at, prev_hash, hash, facts)
    SELECT u.pid, u.seq, u.rid, 'credit', u.hours, u.seconds, u.actor, NULL, now_, u.prev, u.hash, u.facts::jsonb
    FROM unnest(n_actor, n_pid, n_seq, n_rid, n_hours, n_seconds, n_prev, n_hash, n_facts)
      AS u(actor, pid, seq, rid, hours, seconds, prev, hash, facts)
    WHERE u.pid <> ALL (stale);
    -- each statement below takes its values from scalar variables: Citus 13.2 crashed planning this UPDATE on the
    -- worker with array elements (h_seq[i]) in it
    FOR i IN 1 .. coalesce(cardinality(h_pid), 0) LOOP
        q := h_pid[i];
        CONTINUE WHEN q = ANY (stale);
        seq := h_seq[i]; head := h_hash[i]; fixed := h_name[i];
        UPDATE hours_ledger.people  -- the first record written fixes the name
        SET entry_count = seq, last_hash = head, name = CASE WHEN entry_count = 0 THEN fixed ELSE name END
        WHERE id = q;
    END LOOP;
    RETURN stale;
END
$fn$"""

READ_SIGNATURE = ("hours_ledger.read_people(bigint, bigint[], bigint[], smallint[], timestamptz[], timestamptz[], "
                  "date[], date[])")


def upgrade() -> None:
    op.execute(READ)
    op.execute(WRITE)


def downgrade() -> None:
    op.execute(f"DROP FUNCTION {READ_SIGNATURE}")
    op.execute("DROP FUNCTION hours_ledger.write_people")
