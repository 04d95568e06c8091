"""read_people on Citus: a person's head and state read from the person's own shards, by a plan prepared once

Revision ID: hours_ledger_0015
Revises: hours_ledger_0014

read_people (hours_ledger_0014) runs on the worker that holds the people it reads; each person's state read there was
a distributed query that Citus planned anew on every call, for one shard, and then planned again for that shard:
measured on the cluster, 1.5 ms of the worker's CPU a person against 0.2 ms for the same statement on the shard's
tables. Now, for each person:

- the person's shards (people, sittings, records, person_days: one colocation group) are found in Citus's metadata
  on this node, by the person id's hash (`worker_hash`, the function Citus places rows by) and a placement on this
  node's group;
- when all four are on this node, one statement reads the person's head and state from those shards, prepared once
  a session for each shard group (`xs_state_<people shard id>`) and executed with the person's values: the plan is
  made once a shard and a worker connection, not once a person;
- when not (a shard moved since the coordinator grouped the set, or read_people runs on plain PostgreSQL), the same
  statement runs over the distributed tables, which Citus sends wherever the shard is.

Reading from the shards is safe because this read takes no lock and decides nothing for good: write_people writes a
person only if their entry count is still the one read here, checked under the person's lock through the distributed
table; a stale read (a shard moved away, its old copy not yet dropped) fails that check, and the person is decided
again under their lock. The head and the state come from one statement, one snapshot.
"""

from alembic import op

revision = "hours_ledger_0015"
down_revision = "hours_ledger_0014"
branch_labels = None
depends_on = None

# One person's head and state: $1 person, $2 plan year, $3/$4 the sittings' span, $5/$6 its days; %1$s..%4$s the
# tables (people, sittings, records, person_days): a shard's or the distributed ones.
STATE = """
    SELECT jsonb_build_object('pid', $1, 'year', $2, 'starts', busy.starts, 'ends', busy.ends,
                              'days', d.days, 'day_seconds', d.day_seconds, 'topics', used.topics,
                              'topic_hours', used.topic_hours, 'courses', used.courses,
                              'course_hours', used.course_hours, 'entry_count', h.entry_count,
                              'last_hash', encode(h.last_hash, 'hex'), 'name', h.name)
    FROM %1$s h, (
      SELECT coalesce(array_agg(extract(epoch FROM s.started_at)::bigint ORDER BY s.started_at), '{}') AS starts,
             coalesce(array_agg(extract(epoch FROM s.ended_at)::bigint ORDER BY s.started_at), '{}') AS ends
      FROM %2$s s
      JOIN %3$s r ON r.person_id = s.person_id AND r.year = s.year AND r.id = s.record_id
      WHERE s.person_id = $1 AND r.person_id = $1 AND r.reversed_at IS NULL
        AND s.started_at < $4 AND s.started_at > $3 - interval '1 day'
        AND s.ended_at > $3) AS busy,
    (
      SELECT coalesce(array_agg(pd.day ORDER BY pd.day), '{}') AS days,
             coalesce(array_agg(pd.seconds ORDER BY pd.day), '{}') AS day_seconds
      FROM %4$s pd
      WHERE pd.person_id = $1 AND pd.day BETWEEN $5 AND $6) AS d,
    (
      SELECT coalesce(array_agg(u.topic) FILTER (WHERE u.per_topic AND u.topic IS NOT NULL), '{}') AS topics,
             coalesce(array_agg(u.hours) FILTER (WHERE u.per_topic AND u.topic IS NOT NULL), '{}') AS topic_hours,
             coalesce(array_agg(u.course_id) FILTER (WHERE NOT u.per_topic), '{}') AS courses,
             coalesce(array_agg(u.hours) FILTER (WHERE NOT u.per_topic), '{}') AS course_hours
      FROM (SELECT r.topic, r.course_id, sum(r.credited_hours)::int AS hours,
                   GROUPING(r.course_id) = 1 AS per_topic
            FROM %3$s r
            WHERE r.person_id = $1 AND r.year = $2 AND r.reversed_at IS NULL AND r.credited_hours > 0
            GROUP BY GROUPING SETS ((r.topic), (r.course_id))) u) AS used
    WHERE h.id = $1"""

READ = """
CREATE OR REPLACE FUNCTION hours_ledger.read_people(
    p bigint, pids bigint[],
    st_pid bigint[], st_year smallint[], st_lo timestamptz[], st_hi timestamptz[], st_dlo date[], st_dhi date[])
RETURNS jsonb LANGUAGE plpgsql AS $fn$
DECLARE
    q bigint; prev bigint; i int; yr smallint; lo timestamptz; hi timestamptz; dlo date; dhi date;
    people jsonb := '[]'; states jsonb := '[]'; one jsonb; citus boolean; here int; from_shards int := 0;
    t_people text; t_days text; t_records text; t_sittings text; plan text;
    state constant text := $state$""" + STATE + """$state$;
BEGIN
    citus := to_regclass('pg_catalog.pg_dist_local_group') IS NOT NULL;
    IF citus THEN
        SELECT groupid INTO here FROM pg_dist_local_group;  -- static: planned once, only when on Citus
    END IF;
    FOR i IN 1 .. coalesce(cardinality(st_pid), 0) LOOP
        q := st_pid[i]; yr := st_year[i]; lo := st_lo[i]; hi := st_hi[i]; dlo := st_dlo[i]; dhi := st_dhi[i];
        t_people := NULL;
        IF citus THEN  -- the person's four shards, when all are on this node
            SELECT CASE WHEN count(*) = 4 THEN
                         max(shard_name(s.logicalrelid, s.shardid)) FILTER (WHERE s.logicalrelid = 'hours_ledger.people'::regclass) END,
                       max(shard_name(s.logicalrelid, s.shardid)) FILTER (WHERE s.logicalrelid = 'hours_ledger.sittings'::regclass),
                       max(shard_name(s.logicalrelid, s.shardid)) FILTER (WHERE s.logicalrelid = 'hours_ledger.records'::regclass),
                       max(shard_name(s.logicalrelid, s.shardid)) FILTER (WHERE s.logicalrelid = 'hours_ledger.person_days'::regclass),
                       'xs_state_' || max(s.shardid) FILTER (WHERE s.logicalrelid = 'hours_ledger.people'::regclass)
            INTO t_people, t_sittings, t_records, t_days, plan
            FROM pg_dist_shard s JOIN pg_dist_placement pl ON pl.shardid = s.shardid AND pl.groupid = here
            WHERE s.logicalrelid IN ('hours_ledger.people'::regclass, 'hours_ledger.sittings'::regclass,
                                     'hours_ledger.records'::regclass, 'hours_ledger.person_days'::regclass)
              AND worker_hash(q) BETWEEN s.shardminvalue::int AND s.shardmaxvalue::int;
        END IF;
        IF t_people IS NOT NULL THEN
            IF NOT EXISTS (SELECT 1 FROM pg_prepared_statements WHERE name = plan) THEN
                EXECUTE format('PREPARE %I(bigint, smallint, timestamptz, timestamptz, date, date) AS ' ||
                               format(state, t_people, t_sittings, t_records, t_days), plan);
            END IF;
            EXECUTE format('EXECUTE %I(%L, %L, %L, %L, %L, %L)', plan, q, yr, lo, hi, dlo, dhi) INTO one;
            from_shards := from_shards + 1;
        ELSE
            EXECUTE format(state, 'hours_ledger.people', 'hours_ledger.sittings', 'hours_ledger.records',
                           'hours_ledger.person_days')
            INTO one USING q, yr, lo, hi, dlo, dhi;
        END IF;
        CONTINUE WHEN one IS NULL;  -- no such person (the caller counts the heads)
        IF q IS DISTINCT FROM prev THEN
            people := people || jsonb_build_object('id', q, 'entry_count', one->'entry_count',
                                                   'last_hash', one->'last_hash', 'name', one->'name');
            prev := q;
        END IF;
        states := states || (one - 'entry_count' - 'last_hash' - 'name');
    END LOOP;
    -- from_shards: how many of the state reads were read from this node's shards (for tests and diagnosis)
    RETURN jsonb_build_object('people', people, 'states', states, 'from_shards', from_shards);
END
$fn$"""


def upgrade() -> None:
    op.execute(READ)


def downgrade() -> None:
    from importlib import import_module

    op.execute(import_module("hours_ledger.migrations.versions.hours_ledger_0014_worker_calls").READ
               .replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1))
