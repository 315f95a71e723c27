import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { CannotCheck } from '../core/errors.js';
import { Inputs } from '../core/inputs.js';
import { allowedRules } from '../core/locks.js';
import type { OrderRules } from '../core/ordering.js';
import { commandFailure, fillCommand, outputTail, pgEnv, runCommand } from '../shell.js';
import { type StepProtocol, StepServer, StepServerPool } from './step-server.js';
import type { LoadedSet, Migration, Step } from './types.js';
import { StepError } from './types.js';

export interface CommandOptions {
  commands: { list: string; up: string; down?: string; serve?: string };
  /** Where the commands run, and what reported paths are relative to. */
  workingDirectory: string;
  env: NodeJS.ProcessEnv;
  timeoutMs: number;
}

export const CommandRules: OrderRules = {
  tool: 'your migration runner',
  runsBy: 'name',
  namesMatter: false,
  outOfOrder:
    'A runner that records the newest migration skips it on production; one that records every migration runs it after newer ones, an order no fresh database runs.',
  edited:
    'Production ran the old code and will not run it again, so production and fresh databases end up with different schemas.',
  deleted:
    'Production recorded it as applied: it can no longer be rolled back, and fresh databases no longer get what it made.',
};

/**
 * Any runner, through three commands: `list` prints the migration ids in the order the runner
 * applies them (optionally each followed by its file, for the ordering check), `up` and `down`
 * apply one migration given as `{id}`. The database is given as DATABASE_URL and PG*.
 */
export async function loadCommandMigrations(options: CommandOptions): Promise<LoadedSet> {
  const { commands } = options;
  const migrations: Migration[] = [];
  const server = commands.serve
    ? new StepServerPool(
        () => new StepServer(commands.serve as string, ServeProtocol, options.workingDirectory, options.env),
      )
    : undefined;
  for (const [index, entry] of (await listedMigrations(options)).entries()) {
    migrations.push({
      id: entry.id,
      version: [BigInt(/^(\d+)/.exec(entry.id)?.[1] ?? index)],
      key: entry.id,
      name: entry.id,
      source: entry.source,
      up: commandStep(options, commands.up, entry, server && { server, direction: 'up' }),
      ...(commands.down
        ? { down: commandStep(options, commands.down, entry, server && { server, direction: 'down' }) }
        : { noDown: `no ${Inputs.DownCommand}` }),
    });
  }
  return {
    format: 'command',
    layout: `${migrations.length} migrations listed by \`${commands.list}\``,
    migrations,
    rules: CommandRules,
    tracking: {
      tool: 'command',
      table: '',
      unknown:
        'Your runner has no file for it: it cannot roll it back, and fresh databases never get what it made.',
    },
    findings: [],
    ...(server ? { close: () => server.close() } : {}),
  };
}

/** The line protocol of `serve-command`: see README ("A runner that stays alive"). */
const Marker = 'pg-migrate-verify:';
const ServeProtocol: StepProtocol = {
  channel: 'stdout',
  handshake: true,
  request: (argv) => `${argv.join(' ')}\n`,
  parse(line) {
    const trimmed = line.trim();
    if (!trimmed.startsWith(Marker)) return undefined;
    const [word = '', ...rest] = trimmed.slice(Marker.length).trim().split(/\s+/);
    const text = rest.join(' ');
    if (word === 'ready') return { ready: true };
    if (word === 'ok') return { code: 0 };
    if (word === 'error') return { code: 1, error: text };
    return undefined;
  },
};

/** One line of `list-command`: the id, and its file when the runner prints one. */
interface Listed {
  id: string;
  file?: string;
  /** The file's text (the id without a file), compared with the base branch. */
  source: string;
}

async function listedMigrations(options: CommandOptions): Promise<Listed[]> {
  const { commands, workingDirectory } = options;
  const listed = await runCommand(commands.list, {
    cwd: workingDirectory,
    env: options.env,
    timeoutMs: options.timeoutMs,
  });
  if (listed.code !== 0) {
    throw new CannotCheck(
      `'${Inputs.ListCommand}' (${commands.list}) ${listed.timedOut ? 'did not finish within the step timeout' : `exited with ${listed.code ?? 'a signal'}`}: ${outputTail(listed, 10) || 'no output'}. It must print the migration ids, one per line, in the order your runner applies them.`,
    );
  }
  const lines = listed.stdout
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  if (!lines.length)
    throw new CannotCheck(
      `'${Inputs.ListCommand}' (${commands.list}) printed no migration ids. It must print them one per line, in the order your runner applies them.`,
    );
  const entries: Listed[] = [];
  for (const line of lines) {
    const [id = '', given] = line.split(/\s+/, 2);
    if (entries.some((e) => e.id === id))
      throw new CannotCheck(
        `'${Inputs.ListCommand}' printed '${id}' twice. Each migration id must be listed once.`,
      );
    const file = given ? path.relative(workingDirectory, path.resolve(workingDirectory, given)) : undefined;
    let source = id;
    if (file) {
      try {
        source = await readFile(path.resolve(workingDirectory, file), 'utf8');
      } catch (error) {
        throw new CannotCheck(
          `'${Inputs.ListCommand}' printed '${line}', but '${file}' cannot be read. Print the id, optionally followed by the migration's file relative to the working directory.`,
          { cause: error },
        );
      }
    }
    entries.push({ id, ...(file ? { file } : {}), source });
  }
  return entries;
}

/**
 * A step that runs `template` with `{id}` filled in, or asks the runner that stays alive
 * (`serve-command`) when there is one that answered its handshake; a failure is located in the
 * migration's file when known.
 */
function commandStep(
  options: CommandOptions,
  template: string,
  entry: Listed,
  served?: { server: StepServerPool; direction: 'up' | 'down' },
): Step {
  const { workingDirectory } = options;
  const file = entry.file;
  const allow = allowedRules(entry.source);
  return {
    file: file ?? entry.id,
    line: 1,
    noTransaction: 'the runner applies it on its own connection',
    ...(allow.length ? { allow } : {}),
    async run(context) {
      const asked = await served?.server
        .for(context)
        .run([served.direction, entry.id, context.databaseUrl], {}, 24 * 3_600_000, context.signal);
      if (asked) {
        if (asked.code === 0) return;
        const label = `${options.commands.serve}: ${served?.direction} ${entry.id}`;
        const { message, detail, line } = commandFailure(
          label,
          asked,
          file ? { file, cwd: workingDirectory } : undefined,
          asked.answered ? 'answered' : 'exited',
        );
        throw new StepError(message, file ?? entry.id, line, detail);
      }
      const command = fillCommand(template, { id: entry.id });
      const result = await runCommand(command, {
        cwd: workingDirectory,
        env: { ...options.env, ...pgEnv(context.databaseUrl) },
        // The step timeout is the runner's: it aborts the signal.
        timeoutMs: 24 * 3_600_000,
        signal: context.signal,
      });
      if (result.code === 0) return;
      const { message, detail, line } = commandFailure(
        command,
        result,
        file ? { file, cwd: workingDirectory } : undefined,
      );
      throw new StepError(message, file ?? entry.id, line, detail);
    },
  };
}
