import type { SqlNames } from '../names.js'
import { FINISH, giveBackExpiredHolds, NOW, plpgsqlFunction, reclaim, UNDO_SQLSTATE } from './parts.js'

/**
 * PL/pgSQL, in a loop over the ops (`i`): append the counter of op i to the text `list` as
 * `,value,ttl` (ttl '' = none), or, when it is missing or lapsed, append `missing` and run `onMissing`.
 */
function appendCounter(t: string, list: string, missing: string, onMissing = ''): string {
  return `
      SELECT value, expires_at INTO cur_value, cur_expires FROM ${t} WHERE storage_key = p_keys[i];
      IF cur_value IS NOT NULL AND (cur_expires IS NULL OR cur_expires > now_ms) THEN
        ${list} := ${list} || ',' || cur_value || ',' || coalesce((cur_expires - now_ms)::text, '');
      ELSE
        ${list} := ${list} || '${missing}';${onMissing}
      END IF;`
}

/**
 * apply: the ops in order, all or nothing, with the idempotency record in the same step.
 *
 * Parameters: `p_keys bytea[]`, `p_deltas bigint[]`, `p_bounds bigint[]`, `p_ttls bigint[]`,
 * `p_report boolean[]`, `p_hold_ids bytea[]`, `p_hold_ms bigint[]`, `p_settle_ids bytea[]`,
 * `p_keep bigint[]`, `p_load_locks bytea[]` are parallel arrays, one element per op: `p_bounds`
 * holds the max of an op with delta > 0 and the min of one with delta < 0 (NULL: none);
 * `p_report` is true when a missing counter is reported rather than created; `p_hold_ids` /
 * `p_hold_ms` the op's hold, `p_settle_ids` / `p_keep` the hold it settles (NULL: none);
 * `p_load_locks` the loader lock of the counter of an op that gives units back (NULL: none),
 * deleted when the op meets the counter missing, whatever the reply. `p_idem bytea` / `p_idem_ttl
 * bigint` the idempotency record to write (NULL: none), `p_clear bytea` a record to delete,
 * `p_deadline bigint` the caller's deadline in the database clock.
 *
 * Reply (text):
 *   ok,v1,ttl1,...            value and remaining lifetime ('' = none) of each op's counter
 *   same,v1,ttl1,...          every op settled a hold settled before: nothing changed
 *   replay,now,recordedAt,v1,ttl1,...   a live idempotency record; nothing changed
 *   refused,index,reason,v1,ttl1,...    nothing changed; current values ('' = missing)
 */
export function postgresApply(n: SqlNames): string {
  // One SQL statement (CREATE FUNCTION): the PL/pgSQL body reads top to bottom as it runs.
  const t = n.table
  const signature = `${n.apply}(
  p_keys bytea[], p_deltas bigint[], p_bounds bigint[], p_ttls bigint[], p_report boolean[],
  p_hold_ids bytea[], p_hold_ms bigint[], p_settle_ids bytea[], p_keep bigint[], p_load_locks bytea[],
  p_idem bytea, p_idem_ttl bigint, p_clear bytea, p_deadline bigint
) RETURNS text`
  const variables = [
    'n int := coalesce(array_length(p_keys, 1), 0)',
    'touched bytea[]',
    "reply text := ''",
    "as_found text := ''",
    "unknown bytea[] := '{}'",
    'missing_at int := -1',
    'recorded bytea',
    'cur_value bigint',
    'cur_expires bigint',
    'is_live boolean',
    'nxt bigint',
    'units bigint',
    "reclaimed bytea[] := '{}'",
    'held bigint',
    'was_settled boolean',
    'replays int := 0',
    'held_loads bytea[]',
    "revoked bytea[] := '{}'",
  ]
  const body = `
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
  -- The loader locks this call may revoke, locked before any counter (as seed locks them) and
  -- here, outside the part a refusal undoes: they stay locked until the commit, so no load's
  -- seed lands between finding a counter missing and revoking its load. A lock taken after this
  -- is a load that started after this call: it is left alone (and never waited for).
  held_loads := ARRAY(SELECT storage_key FROM ${t} WHERE storage_key = ANY (p_load_locks) ORDER BY storage_key FOR UPDATE);
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
    -- A give-back that finds its counter missing revokes the counter's load (kept in a variable:
    -- a refusal undoes the rows, not the variables).
    FOR i IN 1..n LOOP${appendCounter(t, 'as_found', ',,', '\n        IF p_load_locks[i] = ANY (held_loads) THEN revoked := revoked || p_load_locks[i]; END IF;')}
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
    FOR i IN 1..n LOOP${appendCounter(t, 'reply', ',0,')}
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
  IF cardinality(revoked) > 0 THEN
    -- The loads revoked, whatever the reply.
    DELETE FROM ${t} WHERE storage_key = ANY (revoked) AND value IS NULL;${FINISH}
  END IF;
  RETURN reply;`
  return plpgsqlFunction(signature, variables, body)
}
