import { type AssertionRun, assertionSummary } from './assertions.js';
import type { Finding } from './findings.js';
import { formatDuration, plural } from './format.js';
import type { StepResult } from './report.js';

/**
 * What the checks report while they run. The engine emits these and prints nothing; the edges
 * render them: terminal lines in the CLI, log lines and groups in the Action.
 */
export type CheckEvent =
  /** A migration set's checks begin. */
  | { kind: 'set'; set: string; migrations: number }
  /** One migration's turn begins (`index` counts from 0). */
  | { kind: 'migration started'; set: string; index: number; total: number; id: string }
  /** One migration is done: its up step, and its down step and up again when they ran. */
  | {
      kind: 'migration done';
      set: string;
      index: number;
      total: number;
      id: string;
      up: StepResult;
      down?: StepResult;
      again?: StepResult;
      /** False when any of its checks found something. */
      ok: boolean;
      assertions?: AssertionRun[];
    }
  /** One step of rolling everything back from the newest migration. */
  | { kind: 'rollback'; set: string; index: number; total: number; id: string; step: StepResult }
  | { kind: 'seed loaded'; set: string; after: string }
  | { kind: 'replay'; set: string; production: number; added: number; base: string }
  | { kind: 'finding'; finding: Finding };

const counter = (index: number, total: number) =>
  `${String(index + 1).padStart(String(total).length)}/${total}`;
const timing = (step: StepResult) => (step.ok ? formatDuration(step.ms) : 'failed');

/** The terminal line for an event, when it has one: one per migration, one per rollback step. */
export function progressLine(event: CheckEvent): string | undefined {
  switch (event.kind) {
    case 'migration done': {
      const at = `${counter(event.index, event.total)} ${event.id}`;
      const asserted = event.assertions?.length ? ` · ${assertionSummary(event.assertions)}` : '';
      if (!event.up.ok) return `✗ ${at}  up failed (${formatDuration(event.up.ms)})${asserted}`;
      const steps = [
        `up ${formatDuration(event.up.ms)}`,
        ...(event.down ? [`down ${timing(event.down)}`] : []),
        ...(event.again ? [`up again ${timing(event.again)}`] : []),
      ];
      return `${event.ok ? '✓' : '✗'} ${at}  ${steps.join(' · ')}${asserted}`;
    }
    case 'rollback':
      return `${event.step.ok ? '✓' : '✗'} ${counter(event.index, event.total)} ${event.id}  rollback ${timing(event.step)}`;
    case 'seed loaded':
      return `  seed data loaded after ${event.after}`;
    case 'replay':
      return `  two-phase replay: ${plural(event.production, 'migration')} as on ${event.base}, then ${plural(event.added, 'new migration')}`;
    default:
      return undefined;
  }
}
