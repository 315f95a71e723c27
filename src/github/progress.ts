import * as core from '@actions/core';
import { type CheckEvent, progressLine } from '../core/events.js';
import { plural } from '../core/format.js';

/** The Action's rendering of the checks' events: one log group per migration set, a line per step. */
export function actionProgress(): { emit(event: CheckEvent): void; end(): void } {
  let open = false;
  const end = () => {
    if (open) core.endGroup();
    open = false;
  };
  return {
    emit(event) {
      if (event.kind === 'set') {
        end();
        core.startGroup(`Verify ${event.set} (${plural(event.migrations, 'migration')})`);
        open = true;
        return;
      }
      const line = progressLine(event);
      if (line !== undefined) core.info(line);
    },
    end,
  };
}
