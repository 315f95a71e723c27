import { type Entry, type Expected, type Mark, readSnapshot } from '../catalog/tracker.js';
import { plural } from '../core/format.js';
import type { StepResult } from '../core/report.js';
import { diffSnapshots, type SchemaSnapshot } from '../core/schema.js';
import { reachOf } from '../core/sql-text.js';
import type { Migration } from '../migrations/types.js';
import { heldContext } from './context.js';
import { checkLocks } from './locks.js';
import { fileNotices, type MigrationRecord } from './record.js';
import { done, finishUp, type SentUp, sendUp, type UpTurn, upTurn, upTurnSent, type Walk } from './turn.js';
import type { SentSteps, Workspace } from './workspace.js';

/**
 * A range walked in passes: what rolling everything back needs of it, and what it told, held.
 * `chain`: the migrations whose down steps ran one after the other from the range's last one (newest
 * first), each leaving exactly the schema before its up step; `stoppedAt`: the migration without a
 * down step below them, where rolling back from the head stops.
 */
export interface Passed {
  chain: MigrationRecord[];
  stoppedAt?: MigrationRecord;
  /** Tells what the walk found and did, migration by migration, as a walk one at a time would. */
  tell(): void;
}

/** Whether the range can be walked in passes: nothing in it depends on the order of one migration at a time. */
export function passable(walk: Walk): boolean {
  const { ctx, ws } = walk;
  // Seed data must keep its rows through each down step (counted around it), and full catalog reads
  // would read the whole schema after every step anyway: those stay one migration at a time.
  return ctx.checks.has('reversibility') && walk.seedIndex < 0 && ws.tracker.mode === 'incremental';
}

/**
 * Walks a range in passes, on a database with the migrations before it applied: each run of
 * migrations with down steps goes up one by one, then down one by one from the newest (which is
 * also rolling them back from there), then up again one by one; a migration without a down step
 * just goes up between them. Three steps a migration instead of four, and rolling back is not a
 * walk of its own. Each down step is compared with the schema before its up step, over what it and
 * the up step touched; up again is read once after the run, and the run's schema must then be the
 * one its first up steps gave, object for object (a difference that a later migration of the run
 * takes away again is not seen: one migration at a time would see it).
 *
 * It holds on only while every step does what it must: a step that fails or leaves another schema
 * ends it (undefined), and the range is walked again one migration at a time on a fresh database,
 * which says what went wrong, where, and what that does to the migrations around it. Nothing it
 * found is told before it finishes (`Passed.tell`). `halted`: the walk will not use this range.
 */
export async function walkInPasses(
  walk: Walk,
  records: MigrationRecord[],
  empty: SchemaSnapshot,
  halted: () => boolean,
): Promise<Passed | 'halted' | undefined> {
  // Each migration's findings, events and notes, held until the walk in passes is through.
  const held = records.map(() => heldContext(walk.ctx));
  // What this walk tells is told only if it finishes: its notices are its own until then.
  const told = new Set(walk.told);
  const turns = records.map((record, k) => ({
    record,
    walk: { ...walk, told, ctx: (held[k] as ReturnType<typeof heldContext>).ctx } satisfies Walk,
  }));
  let chain: MigrationRecord[] = [];
  let stoppedAt: MigrationRecord | undefined;
  for (let i = 0; i < turns.length; ) {
    if (halted()) return 'halted';
    const first = turns[i] as (typeof turns)[number];
    if (!first.record.migration.down) {
      const up = await upTurn(first.walk, first.record, 'migration');
      if (up.stop) return undefined;
      stoppedAt = first.record;
      chain = [];
      i++;
      continue;
    }
    let end = i;
    while (end < turns.length && turns[end]?.record.migration.down) end++;
    // Rolled back to before the first migration, the schema is read in full once, independent of
    // the tracking, as rolling everything back reads it.
    const bottom = i === 0 && first.record.position === 0 && walk.ctx.checks.has('rollback-all');
    const run = await passRun(turns.slice(i, end), halted, end === turns.length, bottom ? empty : undefined);
    if (run !== true) return run;
    // Rolling back from the range's end: down steps one after the other, from a run that ends the
    // range (a migration without a down step after it would have stopped it).
    chain = turns
      .slice(i, end)
      .map((t) => t.record)
      .reverse();
    stoppedAt = i > 0 ? turns[i - 1]?.record : undefined;
    i = end;
  }
  for (const notice of told) walk.told.add(notice);
  return {
    chain,
    ...(stoppedAt ? { stoppedAt } : {}),
    tell: () => {
      for (const h of held) h.release();
    },
  };
}

/**
 * What a migration's up step did: the keys it changed and their values before it, and the prints
 * before it of the roots it read.
 */
interface UpState {
  keys: string[];
  before: Map<string, Entry | undefined>;
  prints: Expected;
  /** The up step only added objects: its down step gives back the prints from before, oids and all. */
  onlyAdded: boolean;
  down?: StepResult;
}

/** Up to this many steps go to the server in one round trip of a pass. */
const StepsPerTrip = 8;

/**
 * Up steps whose read afterwards needs more than the take gives (the table of a dropped index, what
 * names a renamed column or a table moved to another schema): they go alone.
 */
const ReadsMore = /\b(drop|rename|set\s+schema)\b/i;

/**
 * The round trips of one pass whose steps go many at a time: consecutive steps that travel
 * (`travels`), at most `StepsPerTrip` to a trip, in the pass's order (up: oldest first; down:
 * newest first, each expected to give back `expect(k)`). The next trip is sent when the first step
 * of one is read back, so the server works while we read. Within a trip, steps whose `reach` (what
 * each may change) shares nothing are read by one take after the last of them: a read costs about
 * as much for one root as for eight (its statements' setup), and no step changed what another read.
 */
class Trips {
  private trips: { order: number[]; sent: SentSteps }[] = [];
  private readonly stride: number;

  constructor(
    private readonly ws: Workspace,
    private readonly direction: 'up' | 'down',
    private readonly run: Turn[],
    private readonly travels: boolean[],
    private readonly expect?: (k: number) => Expected,
    private readonly reach?: (k: number) => ReadonlySet<string> | undefined,
  ) {
    this.stride = direction === 'up' ? 1 : -1;
  }

  private send(k: number): { order: number[]; sent: SentSteps } {
    const order: number[] = [];
    for (let i = k; this.travels[i] && order.length < StepsPerTrip; i += this.stride) order.push(i);
    const { expect, reach } = this;
    const migrations = order.map((i) => (this.run[i] as Turn).record.migration);
    return {
      order,
      sent: this.ws.sendSteps(
        this.direction,
        migrations,
        expect && order.map(expect),
        reach && order.map(reach),
      ),
    };
  }

  /** The trip that holds step `k` (sent now if it is not yet), and where `k` is in it. */
  at(k: number, halted: () => boolean): { sent: SentSteps; index: number } {
    // Trips read back to the end are done.
    while (this.trips[0] && !this.trips[0].order.includes(k)) this.trips.shift();
    if (!this.trips[0]) this.trips.push(this.send(k));
    const trip = this.trips[0] as { order: number[]; sent: SentSteps };
    const after = (trip.order.at(-1) as number) + this.stride;
    if (k === trip.order[0] && this.trips.length === 1 && this.travels[after] && !halted())
      this.trips.push(this.send(after));
    return { sent: trip.sent, index: trip.order.indexOf(k) };
  }

  /** Waits for the trips in flight: nothing of ours runs on the database once it is let go. */
  async settle(): Promise<void> {
    for (const trip of this.trips.splice(0)) await trip.sent.stepped.catch(() => {});
  }
}

/** A migration of a run, and the walk it is told in. */
type Turn = { record: MigrationRecord; walk: Walk };

/**
 * One run of migrations that all have down steps: up, down from the newest, up again. True when
 * every step did what it must. `last`: no step of the range follows the run. `empty`: the run
 * starts from the empty database, which its down steps must give back, read in full.
 */
async function passRun(
  run: Turn[],
  halted: () => boolean,
  last: boolean,
  empty?: SchemaSnapshot,
): Promise<true | 'halted' | undefined> {
  const states: UpState[] = [];
  const first = run[0] as Turn;
  // Every migration of the walk shares its database.
  const { ws } = first.walk;
  // What each migration found is told when the run is through; this says where the walk is.
  ws.plan.ctx.log.info(
    `${first.walk.ctx.name}: ${plural(run.length, 'migration')} from ${first.record.migration.id} up, then down from the newest, then up again`,
  );
  // Each turn is finished while the next migration's up step runs, where nothing the turn does
  // waits on the database (no assertions): one step in flight at a time, read back in order.
  const overlaps = (k: number) =>
    !ws.asserts((run[k] as Turn).record) && !ws.asserts((run[k + 1] as Turn).record);
  // SQL steps go many to a round trip, each with the read of what it touched, while the round trip
  // before is read back: but a step whose take needs a read of its own (a drop, a rename) goes alone.
  const upTexts = run.map(({ record }) => ws.runner.batchText(record.migration, 'up') ?? '');
  const upTravels = run.map(
    ({ record }, k) => ws.travels(record, 'up') && !ReadsMore.test(upTexts[k] as string),
  );
  // Steps that name different objects are read together after the last of them.
  const trips = new Trips(ws, 'up', run, upTravels, undefined, (k) => reachOf(upTexts[k] as string));
  let sent: SentUp | undefined;
  for (let k = 0; k < run.length; k++) {
    const { record, walk } = run[k] as Turn;
    if (halted()) {
      // A step in flight ends before the database is let go.
      await sent?.stepped.catch(() => {});
      await trips.settle();
      return 'halted';
    }
    let up: UpTurn | undefined;
    if (upTravels[k] && !sent) {
      const trip = trips.at(k, halted);
      up = await upTurnSent(walk, record, trip.sent, trip.index);
      if (!up) {
        await trips.settle();
        return undefined;
      }
    } else {
      sent ??= await sendUp(walk, record, 'migration');
      const stepped = await sent.stepped;
      const following = run[k + 1];
      const next =
        stepped.up.ok && following && !upTravels[k + 1] && overlaps(k) && !halted()
          ? await sendUp(following.walk, following.record, 'migration')
          : undefined;
      up = await finishUp(walk, record, sent, stepped);
      sent = next;
    }
    if (up.stop) return undefined;
    states.push({
      keys: up.upKeys,
      before: ws.tracker.entriesAt(up.before, up.upKeys),
      prints: ws.tracker.printsAt(up.before),
      onlyAdded: up.onlyAdded,
    });
    ws.tracker.release(up.before);
  }
  // The run's schema after its up steps, for up again.
  const top = ws.tracker.mark();
  // The down step must give back the prints the roots its up step read had before it, and leave
  // every other root as it is: then the schema is the one before the up step, known without
  // reading it. The next down step is a migration's of its own, traced from the tables there are
  // now. As on the way up, each is finished while the next one runs, where that waits on nothing.
  const sendDown = (k: number) => {
    const mark = ws.tracker.mark();
    const { record } = run[k] as Turn;
    const stepped = ws.step(
      'down',
      record.migration,
      k > 0 ? 'migration' : 'off',
      (states[k] as UpState).prints,
    );
    stepped.catch(() => {});
    return { mark, stepped };
  };
  // A down step whose up step only added goes many to a round trip too (its prints are then the
  // ones from before the up step, oids and all); the last one switches tracing off, alone.
  const downTravels = run.map(
    ({ record }, k) =>
      k > 0 && !!states[k] && printsKnown(states[k] as UpState) && ws.travels(record, 'down'),
  );
  // Down steps whose up steps touched different roots are read together after the last of them.
  const downTrips = new Trips(
    ws,
    'down',
    run,
    downTravels,
    (k) => (states[k] as UpState).prints,
    (k) => new Set((states[k] as UpState).prints.keys()),
  );
  let sentDown: ReturnType<typeof sendDown> | undefined;
  for (let k = run.length - 1; k >= 0; k--) {
    if (halted()) {
      await sentDown?.stepped.catch(() => {});
      await downTrips.settle();
      return 'halted';
    }
    const { record, walk } = run[k] as Turn;
    const state = states[k] as UpState;
    const { ctx } = walk;
    let mark: Mark;
    let stepped: Awaited<ReturnType<typeof sendDown>['stepped']>;
    if (downTravels[k] && !sentDown) {
      const trip = downTrips.at(k, halted);
      mark = ws.tracker.mark();
      const got = await ws.stepAfter(trip.sent, trip.index);
      if (!got) {
        ws.tracker.release(mark);
        await downTrips.settle();
        return undefined;
      }
      stepped = got;
    } else {
      sentDown ??= sendDown(k);
      mark = sentDown.mark;
      stepped = await sentDown.stepped;
      sentDown = undefined;
    }
    const { outcome: down, trace, check } = stepped;
    fileNotices(ctx, 'reversibility', record, 'down', down, walk.told);
    record.report.down = { ok: down.ok, ms: down.ms };
    if (!down.ok || !trace || !check) {
      await downTrips.settle();
      return undefined;
    }
    if (check.same) ws.tracker.restore(state.before, state.prints);
    // The next one's mark is taken now: what this step gave back is not its doing.
    if (
      check.same &&
      k > 0 &&
      !downTravels[k - 1] &&
      !ws.asserts(record) &&
      !ws.asserts((run[k - 1] as Turn).record) &&
      !halted()
    )
      sentDown = sendDown(k - 1);
    await ws.assert(record, 'rolled back');
    const downKeys = ws.tracker.changedSince(mark);
    if (ws.tracing && (trace.locks.length || trace.rewrites.length)) {
      const diffs = diffSnapshots(ws.tracker.at(mark, downKeys), ws.tracker.now(downKeys));
      checkLocks(ctx, ws, record, { direction: 'down', trace, diffs, before: mark }, false);
    }
    // A step sent meanwhile is sent only when this one gave back what it must.
    const same = check.same || gives(ws.tracker, mark, downKeys, state.keys, snapshotOf(state.before));
    ws.tracker.release(mark);
    if (!same) {
      await downTrips.settle();
      return undefined;
    }
    state.down = { ok: down.ok, ms: down.ms };
  }
  if (empty && diffSnapshots(empty, await readSnapshot(ws.catalog, ws.plan.exclusions)).length)
    return undefined;
  // Up again, untraced, SQL steps many to a round trip (each in its own transaction, as one at a
  // time; other formats step by step, each in a session as fresh as ever), and read once after the
  // run: the run's schema must be the one its first up steps gave, object for object. A step that
  // fails ends the passes (the walk one at a time says what it did), so it needs no more here.
  if (halted()) return 'halted';
  const agains = new Map<Migration, StepResult>();
  const turns = new Map(run.map((t) => [t.record.migration, t]));
  const failed = await ws.runner.upMany(
    [...turns.keys()],
    (migration, again) => {
      const { record, walk } = turns.get(migration) as Turn;
      fileNotices(walk.ctx, 'reversibility', record, 'up', { ok: true, ...again }, walk.told);
      agains.set(migration, { ok: true, ms: again.ms });
    },
    true,
  );
  if (failed) return undefined;
  // After the range's last run nothing follows to trace, and no prints are compared any more.
  await ws.refresh(last ? 'none' : 'migration');
  const changed = ws.tracker.changedSince(top);
  const same = diffSnapshots(ws.tracker.at(top, changed), ws.tracker.now(changed)).length === 0;
  ws.tracker.release(top);
  if (!same) return undefined;
  for (const [k, { record, walk }] of run.entries()) {
    record.report.reversible = 'yes';
    const down = (states[k] as UpState).down as StepResult;
    const again = agains.get(record.migration) as StepResult;
    done(walk, record, true, { down, again, reversible: true, unknownState: false });
  }
  return true;
}

/**
 * The up step only added objects, and the print from before it is known of every root it touched
 * that was there (a root first read by a walk of few migrations has none): its down step must give
 * back exactly those prints.
 */
function printsKnown(state: UpState): boolean {
  if (!state.onlyAdded) return false;
  const existed = new Set<string>();
  for (const entry of state.before.values()) if (entry) existed.add(entry.root);
  for (const [root, print] of state.prints) if (print === undefined && existed.has(root)) return false;
  return true;
}

/** The objects of `entries` that are present. */
function snapshotOf(entries: ReadonlyMap<string, Entry | undefined>): SchemaSnapshot {
  const out: SchemaSnapshot = {};
  for (const [key, entry] of entries) if (entry) out[key] = entry.object;
  return out;
}

/**
 * Whether a step gave the state it must, when the database before it was in the state it must be:
 * the keys the step changed (`changed`, since `mark`) and the keys the migration's up step changed
 * (`upKeys`, whose values it must give are `expected`) hold exactly those values; the other keys the
 * step changed must be as before it.
 */
function gives(
  tracker: Walk['ws']['tracker'],
  mark: Mark,
  changed: string[],
  upKeys: string[],
  expected: SchemaSnapshot,
): boolean {
  const ups = new Set(upKeys);
  const others = changed.filter((key) => !ups.has(key));
  const want = { ...tracker.at(mark, others), ...expected };
  return diffSnapshots(want, tracker.now([...others, ...upKeys])).length === 0;
}
