import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline/promises';
import { Command, CommanderError, Option } from 'commander';
import { colourText, wantsColour } from './core/colour.js';
import { CannotCheck, messageOf } from './core/errors.js';
import { progressLine } from './core/events.js';
import { renderJunit } from './core/junit.js';
import { renderMarkdown, renderSummary } from './core/markdown.js';
import { passwordOf, redactUrls } from './core/redact.js';
import { errorReport, exitCodeOf, type Report, Scopes } from './core/report.js';
import { runInit } from './init.js';
import { Formats } from './migrations/types.js';
import { startPostgres } from './postgres/index.js';
import { ProviderChoices, SupportedMajors } from './postgres/types.js';
import { Inputs, type RawInputs, resolveSettings } from './settings.js';
import { verify } from './verify.js';

export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** Colour the progress lines and the summary (a terminal; see `wantsColour`). */
  colour?: boolean;
  /** Asks the person at the terminal (init); absent when nobody is there. */
  ask?: (question: string) => Promise<string>;
}

const defaultIo: CliIo = {
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
  env: process.env,
  cwd: process.cwd(),
  colour: wantsColour(process.stdout.isTTY, process.env),
  ...(process.stdin.isTTY && process.stdout.isTTY
    ? {
        ask: async (question: string) => {
          const rl = createInterface({ input: process.stdin, output: process.stdout });
          try {
            return await rl.question(question);
          } finally {
            rl.close();
          }
        },
      }
    : {}),
};

function program(): Command {
  return new Command('pg-migrate-verify')
    .description(
      'Prove a PostgreSQL migration history is safe: apply every migration on a throwaway Postgres, roll it all back, and report what breaks.',
    )
    .argument('[dir]', `folder of migrations (input '${Inputs.MigrationsDir}'; default: migrations)`)
    .addOption(new Option(`--${Inputs.Format} <format>`, 'migration format').choices(Formats))
    .addOption(
      new Option(`--${Inputs.Postgres} <provider>`, 'where Postgres comes from').choices(ProviderChoices),
    )
    .option(`--${Inputs.PostgresVersion} <major>`, `PostgreSQL major: ${SupportedMajors.join(', ')}`)
    .option(`--${Inputs.PostgresImage} <image>`, 'container image for --postgres docker')
    .option(`--${Inputs.DatabaseUrl} <url>`, 'existing server to create scratch databases in')
    .option(`--${Inputs.BaseRef} <ref>`, 'git ref of the base branch')
    .addOption(
      new Option(
        `--${Inputs.Scope} <scope>`,
        'which migrations get the per-migration checks: changed (default with a base ref) or all',
      ).choices(Scopes),
    )
    .option(`--${Inputs.ListCommand} <command>`, 'format command: prints migration ids in order')
    .option(`--${Inputs.UpCommand} <command>`, 'format command: applies migration {id}')
    .option(`--${Inputs.DownCommand} <command>`, 'format command: reverts migration {id}')
    .option(
      `--${Inputs.ServeCommand} <command>`,
      'format command: a runner that stays alive and takes one step per line (see README)',
    )
    .option(`--${Inputs.HistoryTable} <tables>`, "your runner's history table(s), left out of comparisons")
    .option(`--${Inputs.AlembicCommand} <command>`, 'how to run alembic (default: alembic)')
    .option(`--${Inputs.UrlVariable} <name>`, 'also give the database URL in this environment variable')
    .option(`--${Inputs.AssertionsDir} <dir>`, 'folder of per-migration assertions')
    .option(
      `--${Inputs.AssertCommand} <command>`,
      'runs assertion files of other languages; {id}, {direction}, {file} are filled in',
    )
    .option(
      `--${Inputs.AssertionsStrict} <bool>`,
      'true (default): an assertion must also fail on its other side; false: only its passing side counts',
    )
    .option(`--${Inputs.SeedAfter} <id>`, 'migration after which the seed data is loaded')
    .option(`--${Inputs.SeedFile} <file>`, 'SQL file of seed data')
    .option(`--${Inputs.SeedCommand} <command>`, 'command that loads seed data into DATABASE_URL')
    .option(`--${Inputs.SnapshotFile} <file>`, 'committed schema snapshot')
    .option(`--${Inputs.UpdateSnapshot}`, 'rewrite the snapshot file instead of comparing')
    .option(`--${Inputs.RequireDown}`, 'a migration without a down step is an error')
    .option(`--${Inputs.ModelsCommand} <command>`, 'command that builds the models schema into DATABASE_URL')
    .option(`--${Inputs.TargetDatabaseUrl} <url>`, 'live database for the read-only deploy gate')
    .addOption(
      new Option(`--${Inputs.FailOn} <severity>`, 'which findings fail the run').choices([
        'error',
        'warning',
      ]),
    )
    .option(
      `--${Inputs.StepTimeout} <duration>`,
      'longest one migration step may run, e.g. 90s, 5m (default 5m)',
    )
    .option(
      `--${Inputs.Jobs} <n>`,
      'databases one set may walk on at once: auto (cores, at most 4) or a number; 1 walks on one',
    )
    .option(`--${Inputs.Only} <checks>`, 'comma-separated check ids to run')
    .option(`--${Inputs.Skip} <checks>`, 'comma-separated check ids to skip')
    .option(`-C, --${Inputs.WorkingDirectory} <dir>`, 'directory paths are relative to')
    .option(`--${Inputs.Config} <file>`, 'config file (default: pg-migrate-verify.yml if present)')
    .option(`--${Inputs.Set} <name>`, 'check only this set of the config file (one job of a matrix)')
    .option('--json <file>', 'write the JSON report here')
    .option('--markdown <file>', 'write the Markdown report here')
    .option(
      `--${Inputs.Junit} <file>`,
      'write the report as JUnit XML here (GitLab, Jenkins, CircleCI, Azure)',
    )
    .option('-q, --quiet', 'no per-migration lines')
    .option('-v, --verbose', 'debug output')
    .showHelpAfterError(false)
    .exitOverride();
}

/** Runs the CLI and returns the exit status: 0 passed, 1 failing findings, 2 could not check. */
export async function runCli(argv: string[], io: CliIo = defaultIo): Promise<number> {
  if (argv[0] === 'sets') return listSets(argv.slice(1), io);
  if (argv[0] === 'init') return init(argv.slice(1), io);
  const cmd = program();
  const secrets: string[] = [];
  const mask = (text: string) => secrets.reduce((t, s) => t.replaceAll(s, '***'), redactUrls(text));
  const out = (text: string) => io.stdout(mask(io.colour ? colourText(text) : text));
  const err = (text: string) => io.stderr(mask(text));
  const parsed = parseArgs(cmd, argv, out, err, '--help');
  if (parsed !== undefined) return parsed;
  const opts = cmd.opts<Record<string, string | boolean | undefined>>();
  for (const key of [Inputs.DatabaseUrl, Inputs.TargetDatabaseUrl]) {
    const password = passwordOf(String(opts[camel(key)] ?? ''));
    if (password) secrets.push(password, encodeURIComponent(password));
  }
  const raw: RawInputs = {};
  for (const key of Object.values(Inputs)) {
    const value = opts[camel(key)];
    if (value !== undefined) raw[key] = String(value);
  }
  if (cmd.args[0]) raw[Inputs.MigrationsDir] = cmd.args[0];

  const log = {
    info: (m: string) => err(`${m}\n`),
    warn: (m: string) => err(`warning: ${m}\n`),
    debug: (m: string) => (opts.verbose ? err(`debug: ${m}\n`) : undefined),
  };
  let report: Report;
  try {
    const settings = await resolveSettings(raw, io.cwd);
    log.debug(`settings: ${JSON.stringify({ ...settings, checks: [...settings.checks] })}`);
    report = await verify(settings, {
      log,
      emit: (event) => {
        const line = opts.quiet ? undefined : progressLine(event);
        if (line !== undefined) out(`${line}\n`);
      },
      startPostgres,
      now: () => performance.now(),
      env: io.env,
    });
  } catch (error) {
    if (!(error instanceof CannotCheck)) log.debug((error as Error)?.stack ?? String(error));
    report = errorReport(messageOf(error));
  }
  out(`${renderSummary(report)}\n`);
  try {
    if (opts.json)
      await writeFile(path.resolve(io.cwd, String(opts.json)), mask(`${JSON.stringify(report, null, 2)}\n`));
    if (opts.markdown)
      await writeFile(path.resolve(io.cwd, String(opts.markdown)), mask(renderMarkdown(report)));
    if (opts.junit) await writeFile(path.resolve(io.cwd, String(opts.junit)), mask(renderJunit(report)));
  } catch (error) {
    err(
      `pg-migrate-verify: could not write the report: ${messageOf(error)}. Check the --json / --markdown / --junit path.\n`,
    );
    return 2;
  }
  return exitCodeOf(report.result);
}

function camel(key: string): string {
  return key.replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
}

/**
 * `pg-migrate-verify sets [--json]`: the sets of the config file, a line each, or their names as a
 * JSON array for a workflow's matrix (`fromJSON`).
 */
async function listSets(argv: string[], io: CliIo): Promise<number> {
  const cmd = new Command('pg-migrate-verify sets')
    .description('list the migration sets of the config file')
    .option('--json', 'print the names as a JSON array (for a matrix: fromJSON)')
    .option(`--${Inputs.Config} <file>`, 'config file (default: pg-migrate-verify.yml if present)')
    .option(`-C, --${Inputs.WorkingDirectory} <dir>`, 'directory paths are relative to')
    .showHelpAfterError(false)
    .exitOverride();
  const parsed = parseArgs(cmd, argv, io.stdout, io.stderr, 'sets --help');
  if (parsed !== undefined) return parsed;
  const opts = cmd.opts<{ json?: boolean; config?: string; workingDirectory?: string }>();
  try {
    const settings = await resolveSettings(
      {
        ...(opts.config ? { [Inputs.Config]: opts.config } : {}),
        ...(opts.workingDirectory ? { [Inputs.WorkingDirectory]: opts.workingDirectory } : {}),
      },
      io.cwd,
    );
    if (opts.json) io.stdout(`${JSON.stringify(settings.sets.map((s) => s.name))}\n`);
    else
      for (const s of settings.sets)
        io.stdout(`${s.name}\t${path.relative(settings.workingDirectory, s.dir) || '.'}\t${s.format}\n`);
    return 0;
  } catch (error) {
    io.stderr(`pg-migrate-verify sets: could not list the sets. ${redactUrls(messageOf(error))}\n`);
    return 2;
  }
}

/**
 * `pg-migrate-verify init [folder]`: writes pg-migrate-verify.yml and a pull-request workflow for
 * the migrations it finds (or the folder given), never over an existing file.
 */
async function init(argv: string[], io: CliIo): Promise<number> {
  const cmd = new Command('pg-migrate-verify init')
    .description('write pg-migrate-verify.yml and .github/workflows/migrations.yml for this repository')
    .argument('[folder]', 'the migrations folder (default: found in the repository)')
    .option(`-C, --${Inputs.WorkingDirectory} <dir>`, 'the repository root (default: the current directory)')
    .showHelpAfterError(false)
    .exitOverride();
  const parsed = parseArgs(cmd, argv, io.stdout, io.stderr, 'init --help');
  if (parsed !== undefined) return parsed;
  const opts = cmd.opts<{ workingDirectory?: string }>();
  const root = path.resolve(io.cwd, opts.workingDirectory ?? '.');
  try {
    return await runInit(root, cmd.args[0], { stdout: io.stdout, ...(io.ask ? { ask: io.ask } : {}) });
  } catch (error) {
    io.stderr(`pg-migrate-verify init: ${messageOf(error)}\n`);
    return 2;
  }
}

/**
 * Parses `argv` into `cmd`; undefined to go on, else the exit status: 0 after help or the version,
 * 2 after a usage error (said on `err`, with where to look).
 */
function parseArgs(
  cmd: Command,
  argv: string[],
  out: (text: string) => void,
  err: (text: string) => void,
  helpFlag: string,
): number | undefined {
  let help = '';
  cmd.configureOutput({ writeOut: (t) => (help += t), writeErr: (t) => (help += t) });
  try {
    cmd.parse(argv, { from: 'user' });
    return undefined;
  } catch (error) {
    if (
      error instanceof CommanderError &&
      (error.code === 'commander.helpDisplayed' || error.code === 'commander.version')
    ) {
      out(help);
      return 0;
    }
    err(`${cmd.name()}: ${messageOf(error).replace(/^error: /, '')}. See ${helpFlag}.\n`);
    return 2;
  }
}
