/**
 * The PostgreSQL table and functions of the SQL path. Every contract call that writes is one call
 * of one PL/pgSQL function: one statement, so one transaction, atomic for every session.
 *
 * Conventions shared by every function:
 * - Times are epoch ms of the database clock (`clock_timestamp()`, read after any lock wait);
 *   `expires_at` NULL means no expiry. A row is live when it holds something (`value` or `data`)
 *   and has not expired; anything else reads as missing, and is reclaimed (deleted) when touched.
 * - `p_deadline` is the caller's deadline in the database clock. A call that starts at or after it
 *   changes nothing, and a call that reaches its commit after it is rolled back: a caller told
 *   "timed out" is never applied later. Both raise SQLSTATE `QA001`. Lock waits are bounded by
 *   the store's sessions (`lock_timeout`, set when a connection opens: a per-call `set_config`
 *   costs a fifth of a plain consume).
 * - Rows are locked in one order, by key bytes, after placeholders (rows with no `value` and no
 *   `data`) are made for missing keys, so two calls over the same keys never deadlock and a
 *   missing key can be locked like a present one. Placeholders never outlive the call.
 * - Each call that may create a row (all but a plain consume or refund of a live counter) also
 *   deletes up to two expired rows of other keys, oldest first, skipping locked ones: the table
 *   does not grow with counters that expired and were never touched again.
 */

/** Version of the functions below; part of their names, so an upgrade adds new ones beside. */
const VERSION = 'v1'
/** SQLSTATE raised when a call's deadline has passed in the database. */
export const DEADLINE_SQLSTATE = 'QA001'
/** SQLSTATE used inside `apply` to undo a refused or replayed call (never leaves the function). */
const UNDO_SQLSTATE = 'QA002'

const NOW = `floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint`

export interface PostgresNames {
  /** Schema-qualified, quoted table name. */
  table: string
  /** The holds (reservations) of the counters. */
  holds: string
  apply: string
  get: string
  seed: string
  set: string
  delete: string
  acquireLock: string
  releaseLock: string
}

const quote = (identifier: string) => `"${identifier}"`

export function postgresNames(schema: string, table: string): PostgresNames {
  const qualified = (name: string) => `${quote(schema)}.${quote(name)}`
  return {
    table: qualified(table),
    holds: qualified(`${table}_holds`),
    apply: qualified(`${table}_apply_${VERSION}`),
    get: qualified(`${table}_get_${VERSION}`),
    seed: qualified(`${table}_seed_${VERSION}`),
    set: qualified(`${table}_set_${VERSION}`),
    delete: qualified(`${table}_delete_${VERSION}`),
    acquireLock: qualified(`${table}_lock_${VERSION}`),
    releaseLock: qualified(`${table}_unlock_${VERSION}`),
  }
}

/** A call that arrives after its deadline (it waited for a connection) changes nothing. */
const START = `
  now_ms := ${NOW};
  IF now_ms >= p_deadline THEN
    RAISE EXCEPTION 'andromeda: deadline passed before the call started' USING ERRCODE = '${DEADLINE_SQLSTATE}';
  END IF;`

/** The last step before the commit: past the deadline, everything is rolled back. */
const FINISH = `
  IF ${NOW} >= p_deadline THEN
    RAISE EXCEPTION 'andromeda: deadline passed before the commit' USING ERRCODE = '${DEADLINE_SQLSTATE}';
  END IF;`

/** Deletes up to two expired rows (and their holds); never waits for a lock, so it cannot deadlock. */
const reclaim = (n: PostgresNames) => `
  WITH gone AS (
    DELETE FROM ${n.table} WHERE storage_key IN (
      SELECT storage_key FROM ${n.table} WHERE expires_at <= now_ms ORDER BY expires_at LIMIT 2 FOR UPDATE SKIP LOCKED
    ) RETURNING storage_key
  ) DELETE FROM ${n.holds} WHERE counter_key IN (SELECT storage_key FROM gone);`

/**
 * Gives the units of a counter's expired holds back (and drops its expired settled marks), on
 * the row the caller holds locked. Needs a `units bigint` variable.
 */
const giveBackExpiredHolds = (n: PostgresNames, key: string) => `
  WITH gone AS (DELETE FROM ${n.holds} WHERE counter_key = ${key} AND expires_at <= now_ms RETURNING cost, settled)
    SELECT coalesce(sum(cost) FILTER (WHERE NOT settled), 0) INTO units FROM gone;
  IF units > 0 THEN
    UPDATE ${n.table} SET value = greatest(value - units, 0)
      WHERE storage_key = ${key} AND value IS NOT NULL AND (expires_at IS NULL OR expires_at > now_ms);
  END IF;`

/**
 * The statements that create the table and functions, in order; each is idempotent, so running
 * them again (another process, a later start) changes nothing.
 */
export function postgresMigration(schema: string, table: string): string[] {
  const n = postgresNames(schema, table)
  const t = n.table
  const live = (alias: string) => `((${alias}.value IS NOT NULL OR ${alias}.data IS NOT NULL) AND (${alias}.expires_at IS NULL OR ${alias}.expires_at > ${NOW}))`
  return [
    `CREATE SCHEMA IF NOT EXISTS ${quote(schema)}`,
    `CREATE TABLE IF NOT EXISTS ${t} (
  storage_key bytea PRIMARY KEY,
  value bigint,
  data bytea,
  expires_at bigint
)`,
    `CREATE INDEX IF NOT EXISTS ${quote(`${table}_expires_at`)} ON ${t} (expires_at) WHERE expires_at IS NOT NULL`,
    // A hold's units are part of its counter's value until it is settled (then a settled mark
    // stays for holdMs, so settling again replays) or expires (then they are given back).
    `CREATE TABLE IF NOT EXISTS ${n.holds} (
  counter_key bytea NOT NULL,
  hold_id bytea NOT NULL,
  cost bigint NOT NULL,
  hold_ms bigint NOT NULL,
  expires_at bigint NOT NULL,
  settled boolean NOT NULL DEFAULT false,
  PRIMARY KEY (counter_key, hold_id)
)`,

    // apply: the ops in order, all or nothing, with the idempotency record in the same step.
    // p_keys..p_keep are parallel arrays, one element per op; p_bounds holds the max of an op
    // with delta > 0 and the min of one with delta < 0 (NULL: none); p_hold_ids / p_hold_ms an
    // op's hold, p_settle_ids / p_keep the hold it settles (NULL: none). Reply (text):
    //   ok,v1,ttl1,...            value and remaining lifetime ('' = none) of each op's counter
    //   same,v1,ttl1,...          every op settled a hold settled before: nothing changed
    //   replay,now,recordedAt,v1,ttl1,...   a live idempotency record; nothing changed
    //   refused,index,reason,v1,ttl1,...    nothing changed; current values ('' = missing)
    `CREATE OR REPLACE FUNCTION ${n.apply}(
  p_keys bytea[], p_deltas bigint[], p_bounds bigint[], p_ttls bigint[], p_report boolean[],
  p_hold_ids bytea[], p_hold_ms bigint[], p_settle_ids bytea[], p_keep bigint[],
  p_idem bytea, p_idem_ttl bigint, p_clear bytea, p_deadline bigint
) RETURNS text LANGUAGE plpgsql AS $fn$
DECLARE
  now_ms bigint;
  n int := coalesce(array_length(p_keys, 1), 0);
  touched bytea[];
  reply text := '';
  as_found text := '';
  unknown bytea[] := '{}';
  missing_at int := -1;
  recorded bytea;
  cur_value bigint;
  cur_expires bigint;
  is_live boolean;
  nxt bigint;
  units bigint;
  reclaimed bytea[] := '{}';
  held bigint;
  was_settled boolean;
  replays int := 0;
BEGIN${START}
  -- One op on a live counter, no idempotency record (a plain consume or refund): the check and
  -- the add are one UPDATE, which waits for the row and re-checks the newest version. Anything
  -- else (missing, expired, several ops) goes the general way below.
  IF n = 1 AND p_idem IS NULL AND p_clear IS NULL AND p_deltas[1] <> 0 AND p_hold_ids[1] IS NULL AND p_settle_ids[1] IS NULL THEN
    UPDATE ${t} SET value = value + p_deltas[1]
      WHERE storage_key = p_keys[1] AND value IS NOT NULL AND (expires_at IS NULL OR expires_at > ${NOW})
        AND (p_deltas[1] < 0 OR (value + p_deltas[1] <= 9007199254740991 AND value + p_deltas[1] <= coalesce(p_bounds[1], 9007199254740991)))
        AND (p_deltas[1] > 0 OR p_bounds[1] IS NULL OR value + p_deltas[1] >= p_bounds[1])
      RETURNING value, expires_at INTO cur_value, cur_expires;
    IF FOUND THEN${FINISH}
      -- (greatest() skips NULLs in PostgreSQL: a counter without expiry must stay without.)
      RETURN 'ok,' || cur_value || ',' || CASE WHEN cur_expires IS NULL THEN '' ELSE greatest(cur_expires - ${NOW}, 1)::text END;
    END IF;
    -- Refused by the value a live counter holds now (a sold-out flash sale): say so without
    -- taking a lock, as a refusal changes nothing.
    now_ms := ${NOW};
    SELECT value, expires_at INTO cur_value, cur_expires FROM ${t} WHERE storage_key = p_keys[1];
    -- (Expired holds would give units back first: those calls go the general way.)
    IF cur_value IS NOT NULL AND (cur_expires IS NULL OR cur_expires > now_ms)
      AND NOT EXISTS (SELECT 1 FROM ${n.holds} WHERE counter_key = p_keys[1] AND expires_at <= now_ms AND NOT settled) THEN
      nxt := cur_value + p_deltas[1];
      IF p_deltas[1] > 0 AND (nxt > 9007199254740991 OR nxt > p_bounds[1]) THEN
        RETURN 'refused,0,limit,' || cur_value || ',' || coalesce((cur_expires - now_ms)::text, '');
      END IF;
      IF p_deltas[1] < 0 AND nxt < p_bounds[1] THEN
        RETURN 'refused,0,floor,' || cur_value || ',' || coalesce((cur_expires - now_ms)::text, '');
      END IF;
    END IF;
  END IF;
  touched := ARRAY(SELECT DISTINCT k FROM unnest(p_keys || ARRAY[p_idem, p_clear]) AS k WHERE k IS NOT NULL ORDER BY k);
  BEGIN
    -- Lock every key in byte order. A row deleted between the two statements (a reclaim, a
    -- delete()) is not locked by the second, so go round until all of them are held.
    LOOP
      INSERT INTO ${t} (storage_key) SELECT k FROM unnest(touched) AS k ORDER BY k ON CONFLICT DO NOTHING;
      PERFORM 1 FROM ${t} WHERE storage_key = ANY (touched) ORDER BY storage_key FOR UPDATE;
      EXIT WHEN (SELECT count(*) FROM ${t} WHERE storage_key = ANY (touched)) = cardinality(touched);
    END LOOP;
    now_ms := ${NOW};

    IF p_idem IS NOT NULL THEN
      SELECT data INTO recorded FROM ${t}
        WHERE storage_key = p_idem AND data IS NOT NULL AND (expires_at IS NULL OR expires_at > now_ms);
      IF recorded IS NOT NULL THEN
        reply := 'replay,' || now_ms || ',' || convert_from(recorded, 'UTF8');
        RAISE EXCEPTION 'undo' USING ERRCODE = '${UNDO_SQLSTATE}';
      END IF;
    END IF;

    -- Expired holds give their units back before anything is decided on those counters.
    FOR i IN 1..n LOOP
      CONTINUE WHEN p_keys[i] = ANY (reclaimed);
      reclaimed := reclaimed || p_keys[i];${giveBackExpiredHolds(n, 'p_keys[i]')}
    END LOOP;

    -- The counters as they stand, for a refusal: what it reports must be what it decided on.
    FOR i IN 1..n LOOP
      SELECT value, expires_at INTO cur_value, cur_expires FROM ${t} WHERE storage_key = p_keys[i];
      IF cur_value IS NOT NULL AND (cur_expires IS NULL OR cur_expires > now_ms) THEN
        as_found := as_found || ',' || cur_value || ',' || coalesce((cur_expires - now_ms)::text, '');
      ELSE
        as_found := as_found || ',,';
      END IF;
    END LOOP;

    -- A missing counter to report is reported only when no other op is refused (loading it
    -- could not make the call fit); later ops on its key are skipped meanwhile.
    FOR i IN 1..n LOOP
      CONTINUE WHEN p_keys[i] = ANY (unknown);
      SELECT value, expires_at INTO cur_value, cur_expires FROM ${t} WHERE storage_key = p_keys[i];
      is_live := cur_value IS NOT NULL AND (cur_expires IS NULL OR cur_expires > now_ms);
      IF NOT is_live THEN
        IF p_report[i] THEN
          IF missing_at < 0 THEN missing_at := i - 1; END IF;
          unknown := unknown || p_keys[i];
          CONTINUE;
        END IF;
        IF p_settle_ids[i] IS NULL THEN cur_value := 0; END IF;
      END IF;
      IF p_settle_ids[i] IS NOT NULL THEN
        -- A live hold of a live counter: keep p_keep of its units, give the rest back.
        held := NULL;
        IF is_live THEN
          SELECT cost, settled INTO held, was_settled FROM ${n.holds}
            WHERE counter_key = p_keys[i] AND hold_id = p_settle_ids[i] AND expires_at > now_ms;
        END IF;
        IF held IS NULL THEN
          reply := 'refused,' || (i - 1) || ',hold' || as_found;
          RAISE EXCEPTION 'undo' USING ERRCODE = '${UNDO_SQLSTATE}';
        END IF;
        IF was_settled THEN
          replays := replays + 1;
          CONTINUE;
        END IF;
        UPDATE ${t} SET value = greatest(value - (held - least(p_keep[i], held)), 0) WHERE storage_key = p_keys[i];
        UPDATE ${n.holds} SET settled = true, expires_at = now_ms + hold_ms WHERE counter_key = p_keys[i] AND hold_id = p_settle_ids[i];
        CONTINUE;
      END IF;
      nxt := cur_value + p_deltas[i];
      IF p_deltas[i] > 0 AND (nxt > 9007199254740991 OR nxt > p_bounds[i]) THEN
        reply := 'refused,' || (i - 1) || ',limit' || as_found;
        RAISE EXCEPTION 'undo' USING ERRCODE = '${UNDO_SQLSTATE}';
      END IF;
      IF p_deltas[i] < 0 AND nxt < p_bounds[i] THEN
        reply := 'refused,' || (i - 1) || ',floor' || as_found;
        RAISE EXCEPTION 'undo' USING ERRCODE = '${UNDO_SQLSTATE}';
      END IF;
      IF p_deltas[i] <> 0 THEN
        IF is_live THEN
          UPDATE ${t} SET value = nxt WHERE storage_key = p_keys[i];
        ELSE
          -- Created now (a placeholder, or an expired row taken over): its lifetime starts here,
          -- and holds of an earlier counter under this key are gone with it.
          UPDATE ${t} SET value = nxt, data = NULL, expires_at = now_ms + p_ttls[i] WHERE storage_key = p_keys[i];
          DELETE FROM ${n.holds} WHERE counter_key = p_keys[i];
        END IF;
        IF p_hold_ids[i] IS NOT NULL THEN
          INSERT INTO ${n.holds} (counter_key, hold_id, cost, hold_ms, expires_at)
            VALUES (p_keys[i], p_hold_ids[i], p_deltas[i], p_hold_ms[i], now_ms + p_hold_ms[i])
            ON CONFLICT (counter_key, hold_id) DO UPDATE
              SET cost = excluded.cost, hold_ms = excluded.hold_ms, expires_at = excluded.expires_at, settled = false;
        END IF;
      END IF;
    END LOOP;
    IF missing_at >= 0 THEN
      reply := 'refused,' || missing_at || ',missing' || as_found;
      RAISE EXCEPTION 'undo' USING ERRCODE = '${UNDO_SQLSTATE}';
    END IF;

    reply := 'ok';
    FOR i IN 1..n LOOP
      SELECT value, expires_at INTO cur_value, cur_expires FROM ${t} WHERE storage_key = p_keys[i];
      IF cur_value IS NOT NULL AND (cur_expires IS NULL OR cur_expires > now_ms) THEN
        reply := reply || ',' || cur_value || ',' || coalesce((cur_expires - now_ms)::text, '');
      ELSE
        reply := reply || ',0,';
      END IF;
    END LOOP;
    IF replays = n THEN reply := 'same' || substr(reply, 3); END IF;
    IF p_clear IS NOT NULL THEN
      DELETE FROM ${t} WHERE storage_key = p_clear;
    END IF;
    IF p_idem IS NOT NULL THEN
      -- The record keeps its write time, so a replay can report each lifetime as it is then.
      UPDATE ${t} SET value = NULL, data = convert_to(now_ms || substr(reply, 3), 'UTF8'), expires_at = now_ms + p_idem_ttl
        WHERE storage_key = p_idem;
    END IF;
    DELETE FROM ${t} WHERE storage_key = ANY (touched) AND ((value IS NULL AND data IS NULL) OR expires_at <= now_ms);${reclaim(n)}${FINISH}
  EXCEPTION WHEN SQLSTATE '${UNDO_SQLSTATE}' THEN
    -- Everything since the inner BEGIN is undone (placeholders and locks too); reply is set.
    NULL;
  END;
  RETURN reply;
END
$fn$`,

    // seed: create the counter only if no live row holds the key. Reply: true when it was set.
    `CREATE OR REPLACE FUNCTION ${n.seed}(p_key bytea, p_value bigint, p_ttl bigint, p_deadline bigint)
RETURNS boolean LANGUAGE plpgsql AS $fn$
DECLARE
  now_ms bigint;
  done boolean;
BEGIN${START}
  INSERT INTO ${t} AS cur (storage_key, value, expires_at) VALUES (p_key, p_value, ${NOW} + p_ttl)
    ON CONFLICT (storage_key) DO UPDATE SET value = excluded.value, data = NULL, expires_at = excluded.expires_at
    WHERE NOT ${live('cur')}
    RETURNING true INTO done;
  IF done THEN
    DELETE FROM ${n.holds} WHERE counter_key = p_key;
  END IF;${reclaim(n)}${FINISH}
  RETURN coalesce(done, false);
END
$fn$`,

    // set: overwrite the value; a live counter keeps its lifetime, a new one gets p_ttl.
    `CREATE OR REPLACE FUNCTION ${n.set}(p_key bytea, p_value bigint, p_ttl bigint, p_deadline bigint)
RETURNS boolean LANGUAGE plpgsql AS $fn$
DECLARE
  now_ms bigint;
  cur_value bigint;
  cur_expires bigint;
BEGIN${START}
  SELECT value, expires_at INTO cur_value, cur_expires FROM ${t} WHERE storage_key = p_key FOR UPDATE;
  IF cur_value IS NOT NULL AND (cur_expires IS NULL OR cur_expires > now_ms) THEN
    UPDATE ${t} SET value = p_value WHERE storage_key = p_key;
  ELSE
    -- A counter created here starts without holds (those of an earlier counter are gone).
    DELETE FROM ${n.holds} WHERE counter_key = p_key;
    INSERT INTO ${t} (storage_key, value, expires_at) VALUES (p_key, p_value, now_ms + p_ttl)
      ON CONFLICT (storage_key) DO UPDATE SET value = excluded.value, data = NULL, expires_at = excluded.expires_at;
  END IF;${reclaim(n)}${FINISH}
  RETURN true;
END
$fn$`,

    `CREATE OR REPLACE FUNCTION ${n.delete}(p_key bytea, p_deadline bigint)
RETURNS boolean LANGUAGE plpgsql AS $fn$
DECLARE
  now_ms bigint;
BEGIN${START}
  DELETE FROM ${t} WHERE storage_key = p_key;
  DELETE FROM ${n.holds} WHERE counter_key = p_key;${FINISH}
  RETURN true;
END
$fn$`,

    // get, when the counter has expired holds: give their units back, then read. Reply:
    // 'value,ttl' ('' ttl: none), or '' when the counter is missing.
    `CREATE OR REPLACE FUNCTION ${n.get}(p_key bytea, p_deadline bigint)
RETURNS text LANGUAGE plpgsql AS $fn$
DECLARE
  now_ms bigint;
  units bigint;
  cur_value bigint;
  cur_expires bigint;
BEGIN${START}
  SELECT value, expires_at INTO cur_value, cur_expires FROM ${t} WHERE storage_key = p_key FOR UPDATE;
  now_ms := ${NOW};${giveBackExpiredHolds(n, 'p_key')}
  SELECT value, expires_at INTO cur_value, cur_expires FROM ${t} WHERE storage_key = p_key;${FINISH}
  IF cur_value IS NULL OR (cur_expires IS NOT NULL AND cur_expires <= now_ms) THEN RETURN ''; END IF;
  RETURN cur_value || ',' || coalesce((cur_expires - now_ms)::text, '');
END
$fn$`,

    // acquire: take the lock unless a live row holds the key; true also when p_token already
    // holds it (its lifetime is not re-armed).
    `CREATE OR REPLACE FUNCTION ${n.acquireLock}(p_key bytea, p_token bytea, p_ttl bigint, p_deadline bigint)
RETURNS boolean LANGUAGE plpgsql AS $fn$
DECLARE
  now_ms bigint;
  done boolean;
BEGIN${START}
  INSERT INTO ${t} AS cur (storage_key, data, expires_at) VALUES (p_key, p_token, ${NOW} + p_ttl)
    ON CONFLICT (storage_key) DO UPDATE SET value = NULL, data = excluded.data, expires_at = excluded.expires_at
    WHERE NOT ${live('cur')}
    RETURNING true INTO done;
  IF done IS NULL THEN
    SELECT true INTO done FROM ${t} AS cur WHERE storage_key = p_key AND data = p_token AND ${live('cur')};
  END IF;${reclaim(n)}${FINISH}
  RETURN coalesce(done, false);
END
$fn$`,

    // release: delete the lock only if p_token holds it.
    `CREATE OR REPLACE FUNCTION ${n.releaseLock}(p_key bytea, p_token bytea, p_deadline bigint)
RETURNS boolean LANGUAGE plpgsql AS $fn$
DECLARE
  now_ms bigint;
  done boolean;
BEGIN${START}
  DELETE FROM ${t} AS cur WHERE storage_key = p_key AND data = p_token AND ${live('cur')} RETURNING true INTO done;${FINISH}
  RETURN coalesce(done, false);
END
$fn$`,
  ]
}

/**
 * Reads a counter without writing: `value` and remaining `ttl_ms` (NULL: none), no row when
 * missing; `stale` when it has expired holds, whose units the get function gives back first.
 */
export function postgresGet(schema: string, table: string): string {
  const n = postgresNames(schema, table)
  return `SELECT value::text AS value, (expires_at - now_ms)::text AS ttl_ms,
  EXISTS (SELECT 1 FROM ${n.holds} WHERE counter_key = $1 AND expires_at <= now_ms AND NOT settled) AS stale
FROM ${n.table}, (SELECT ${NOW} AS now_ms) AS clock
WHERE storage_key = $1 AND value IS NOT NULL AND (expires_at IS NULL OR expires_at > now_ms)`
}

/** The database clock, epoch ms. */
export const POSTGRES_NOW = `SELECT ${NOW}::text AS now_ms`
