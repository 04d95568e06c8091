"""The worker calls on Citus, planned once: generic plans, one metadata read a call, VALUES writes

Revision ID: hours_ledger_0016
Revises: hours_ledger_0015

Measured on the cluster (pg_stat_statements with nested statements, 1,500 single pushes): most of a worker's
database time in the two calls went to planning, not to reading or writing.

- **Generic plans.** Both functions run with `plan_cache_mode = force_generic_plan`. The records and sittings are
  partitioned by year; for such a table PostgreSQL's plan cache costs a generic plan over every partition against
  custom plans pruned to one, and so planned the person's prepared state read again on nearly every execution (74
  plans in 84 executions, 2-3 ms each), and the foreign key checks of the rows written too (1,204 plans in 1,431
  checks). A generic plan prunes the partitions when it starts, by the year it is given.
- **The shards found once a call.** read_people read Citus's metadata once a person, to find the person's shards on
  this node (0.7 ms a person under load); it now reads this node's shard groups of the four tables once a call
  (their hash ranges and names) and finds each person's by the id's `worker_hash` among them.
- **VALUES writes.** write_people wrote each table's rows by `INSERT ... SELECT ... FROM unnest(...)`. Citus cannot
  route such a statement by its rows before it has them: it runs the SELECT, keeps its rows as an intermediate
  result and copies them on to each shard they fall on. Measured on the cluster's worker for 16 people's day totals:
  7-9 ms and 2.6-3.4 ms of the backend's CPU a statement, against 1.4-1.8 ms and 1.1-1.2 ms for the same rows as a
  multi-row VALUES insert, which Citus splits by shard as it plans. The rows are the same, in the same order, with
  the same filter (no row of a person whose head moved); each table's VALUES text is made by `format('%L', ...)` in
  the database from the same arrays, so every value is written from its own type's text form (timestamps with their
  offset, bytea in hex, jsonb as sent) and nothing passes through the application as SQL. A table with no row for
  the call gets no statement.
"""

from alembic import op

from hours_ledger.migrations.versions.hours_ledger_0015_local_state_reads import STATE as STATE_0015

# 0015's read, with the topics and courses in a fixed order (the plan chose it before: a prepared read of a shard
# and Citus's read of the distributed table could list them differently)
STATE = (STATE_0015
         .replace("array_agg(u.topic) FILTER", "array_agg(u.topic ORDER BY u.topic) FILTER")
         .replace("array_agg(u.hours) FILTER (WHERE u.per_topic", "array_agg(u.hours ORDER BY u.topic) FILTER (WHERE u.per_topic")
         .replace("array_agg(u.course_id) FILTER", "array_agg(u.course_id ORDER BY u.course_id) FILTER")
         .replace("array_agg(u.hours) FILTER (WHERE NOT", "array_agg(u.hours ORDER BY u.course_id) FILTER (WHERE NOT"))
assert STATE.count("ORDER BY u.") == 4

revision = "hours_ledger_0016"
down_revision = "hours_ledger_0015"
branch_labels = None
depends_on = None

WRITE = """
CREATE OR REPLACE FUNCTION hours_ledger.write_people(
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
RETURNS bigint[] LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $fn$
DECLARE
    q bigint; i int; stale bigint[] := '{}'; seq int; head bytea; fixed text; v text;
BEGIN
    -- the locks, in person-id order (e_pid ascending); a head that moved since it was read: that person is left out
    FOR i IN 1 .. coalesce(cardinality(e_pid), 0) LOOP
        q := e_pid[i]; seq := e_count[i];
        PERFORM 1 FROM hours_ledger.people WHERE id = q AND entry_count = seq FOR UPDATE;
        IF NOT FOUND THEN
            stale := stale || q;
        END IF;
    END LOOP;
    SELECT string_agg(format('(%L,%L,%L,%L,%L,%L,%L,%L,%L,%L,%L,%L,%L,%L,%L::jsonb,%L,%L,%L,%L::jsonb,%L)',
                             u.id, u.base, u.ext, u.pid, u.course, u.year, u.category, u.topic, u.field, u.hours,
                             u.mode, u.unit_name, u.uscc, u.region, u.exam, u.counted, u.credited, u.status,
                             u.adjustments, now_), ',' ORDER BY u.o)
    INTO v
    FROM unnest(r_base, r_id, r_ext, r_pid, r_course, r_year, r_category, r_topic, r_field, r_hours, r_mode,
                r_unit_name, r_uscc, r_region, r_exam, r_counted, r_credited, r_status, r_adjustments)
      WITH ORDINALITY AS u(base, id, ext, pid, course, year, category, topic, field, hours, mode, unit_name, uscc,
                           region, exam, counted, credited, status, adjustments, o)
    WHERE u.pid <> ALL (stale);
    IF v IS NOT NULL THEN
        EXECUTE 'INSERT INTO hours_ledger.records (id, base_id, external_id, person_id, course_id, year, category, '
                'topic, field, course_hours, mode, unit_name, unit_uscc, unit_region, exam, counted_seconds, '
                'credited_hours, status, adjustments, created_at) VALUES ' || v;
    END IF;
    SELECT string_agg(format('(%L,%L,%L,%L,%L,%L)', u.base, u.ext, u.digest, u.pid, u.year, u.id), ',' ORDER BY u.o)
    INTO v
    FROM unnest(r_base, r_id, r_ext, r_pid, r_year, r_digest) WITH ORDINALITY AS u(base, id, ext, pid, year, digest, o)
    WHERE u.pid <> ALL (stale);
    IF v IS NOT NULL THEN
        EXECUTE 'INSERT INTO hours_ledger.record_keys (base_id, external_id, request_hash, person_id, year, '
                'record_id) VALUES ' || v;
    END IF;
    SELECT string_agg(format('(%L,%L,%L,''credit'')', u.pid, u.year, u.id), ',' ORDER BY u.o)
    INTO v
    FROM unnest(r_pid, r_year, r_id) WITH ORDINALITY AS u(pid, year, id, o)
    WHERE u.pid <> ALL (stale);
    IF v IS NOT NULL THEN
        EXECUTE 'INSERT INTO hours_ledger.statistics_queue (person_id, year, record_id, change) VALUES ' || v;
    END IF;
    SELECT string_agg(format('(%L,%L,%L,%L,%L,%L,%L,%L,%L)', u.pid, u.year, u.rid, u.s, u.e, u.media, u.passed,
                             u.failed, u.mode), ',' ORDER BY u.o)
    INTO v
    FROM unnest(s_pid, s_year, s_rid, s_start, s_end, s_media, s_passed, s_failed, s_mode)
      WITH ORDINALITY AS u(pid, year, rid, s, e, media, passed, failed, mode, o)
    WHERE u.pid <> ALL (stale);
    IF v IS NOT NULL THEN
        EXECUTE 'INSERT INTO hours_ledger.sittings (person_id, year, record_id, started_at, ended_at, media_seconds, '
                'identity_passed, identity_failed, mode) VALUES ' || v;
    END IF;
    SELECT string_agg(format('(%L,%L,%L,%L,%L,%L,%L)', u.pid, u.year, u.rid, u.d, u.s, u.e,
                             extract(epoch FROM u.e - u.s)::int), ',' ORDER BY u.o)
    INTO v
    FROM unnest(a_pid, a_year, a_rid, a_day, a_start, a_end) WITH ORDINALITY AS u(pid, year, rid, d, s, e, o)
    WHERE u.pid <> ALL (stale);
    IF v IS NOT NULL THEN
        EXECUTE 'INSERT INTO hours_ledger.allocations (person_id, year, record_id, day, started_at, ended_at, '
                'seconds) VALUES ' || v;
    END IF;
    SELECT string_agg(format('(%L,%L,%L)', u.pid, u.day, u.seconds), ',' ORDER BY u.o)
    INTO v
    FROM unnest(d_pid, d_day, d_seconds) WITH ORDINALITY AS u(pid, day, seconds, o)
    WHERE u.pid <> ALL (stale);
    IF v IS NOT NULL THEN
        EXECUTE 'INSERT INTO hours_ledger.person_days AS pd (person_id, day, seconds) VALUES ' || v ||
                ' ON CONFLICT (person_id, day) DO UPDATE SET seconds = pd.seconds + EXCLUDED.seconds';
    END IF;
    SELECT string_agg(format('(%L,%L,%L,''credit'',%L,%L,%L,NULL,%L,%L,%L,%L::jsonb)', u.pid, u.seq, u.rid,
                             u.hours, u.seconds, u.actor, now_, u.prev, u.hash, u.facts), ',' ORDER BY u.o)
    INTO v
    FROM unnest(n_actor, n_pid, n_seq, n_rid, n_hours, n_seconds, n_prev, n_hash, n_facts)
      WITH ORDINALITY AS u(actor, pid, seq, rid, hours, seconds, prev, hash, facts, o)
    WHERE u.pid <> ALL (stale);
    IF v IS NOT NULL THEN
        EXECUTE 'INSERT INTO hours_ledger.entries (person_id, seq, record_id, kind, hours, seconds, actor_id, reason, '
                'recorded_at, prev_hash, hash, facts) VALUES ' || v;
    END IF;
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


READ = """
CREATE OR REPLACE FUNCTION hours_ledger.read_people(
    p bigint, pids bigint[],
    st_pid bigint[], st_year smallint[], st_lo timestamptz[], st_hi timestamptz[], st_dlo date[], st_dhi date[])
RETURNS jsonb LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $fn$
DECLARE
    q bigint; h int; prev bigint; i int; g int; yr smallint; lo timestamptz; hi timestamptz; dlo date; dhi date;
    people jsonb := '[]'; states jsonb := '[]'; one jsonb; from_shards int := 0; plan text;
    lows int[] := '{}'; highs int[]; t_people text[]; t_sittings text[]; t_records text[]; t_days text[]; plans text[];
    state constant text := $state$""" + STATE + """$state$;
BEGIN
    IF to_regclass('pg_catalog.pg_dist_local_group') IS NOT NULL THEN
        -- this node's shard groups of the four tables (colocated: one hash range each), once a call
        SELECT coalesce(array_agg(g.lo ORDER BY g.lo), '{}'), array_agg(g.hi ORDER BY g.lo),
               array_agg(g.people ORDER BY g.lo), array_agg(g.sittings ORDER BY g.lo),
               array_agg(g.records ORDER BY g.lo), array_agg(g.days ORDER BY g.lo), array_agg(g.plan ORDER BY g.lo)
        INTO lows, highs, t_people, t_sittings, t_records, t_days, plans
        FROM (SELECT s.shardminvalue::int AS lo, s.shardmaxvalue::int AS hi,
                     max(shard_name(s.logicalrelid, s.shardid)) FILTER (WHERE s.logicalrelid = 'hours_ledger.people'::regclass) AS people,
                     max(shard_name(s.logicalrelid, s.shardid)) FILTER (WHERE s.logicalrelid = 'hours_ledger.sittings'::regclass) AS sittings,
                     max(shard_name(s.logicalrelid, s.shardid)) FILTER (WHERE s.logicalrelid = 'hours_ledger.records'::regclass) AS records,
                     max(shard_name(s.logicalrelid, s.shardid)) FILTER (WHERE s.logicalrelid = 'hours_ledger.person_days'::regclass) AS days,
                     'xs_state_' || max(s.shardid) FILTER (WHERE s.logicalrelid = 'hours_ledger.people'::regclass) AS plan
              FROM pg_dist_shard s
              JOIN pg_dist_placement pl ON pl.shardid = s.shardid
              JOIN pg_dist_local_group here ON pl.groupid = here.groupid
              WHERE s.logicalrelid IN ('hours_ledger.people'::regclass, 'hours_ledger.sittings'::regclass,
                                       'hours_ledger.records'::regclass, 'hours_ledger.person_days'::regclass)
              GROUP BY 1, 2 HAVING count(*) = 4) g;
    END IF;
    FOR i IN 1 .. coalesce(cardinality(st_pid), 0) LOOP
        q := st_pid[i]; yr := st_year[i]; lo := st_lo[i]; hi := st_hi[i]; dlo := st_dlo[i]; dhi := st_dhi[i];
        plan := NULL;
        IF cardinality(lows) > 0 THEN  -- the shard group whose range holds the id's hash, when it is on this node
            h := worker_hash(q);
            FOR j IN 1 .. cardinality(lows) LOOP
                IF h BETWEEN lows[j] AND highs[j] THEN  -- (j is the loop's own variable: g keeps it)
                    plan := plans[j]; g := j;
                    EXIT;
                END IF;
            END LOOP;
        END IF;
        IF plan IS NOT NULL THEN
            IF NOT EXISTS (SELECT 1 FROM pg_prepared_statements WHERE name = plan) THEN
                EXECUTE format('PREPARE %I(bigint, smallint, timestamptz, timestamptz, date, date) AS ' ||
                               format(state, t_people[g], t_sittings[g], t_records[g], t_days[g]), plan);
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
    op.execute(WRITE)


def downgrade() -> None:
    from importlib import import_module

    versions = "hours_ledger.migrations.versions."
    op.execute(import_module(versions + "hours_ledger_0015_local_state_reads").READ)
    op.execute(import_module(versions + "hours_ledger_0014_worker_calls").WRITE
               .replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1))
    op.execute("ALTER FUNCTION hours_ledger.read_people RESET ALL")
    op.execute("ALTER FUNCTION hours_ledger.write_people RESET ALL")
