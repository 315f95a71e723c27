import { spawn } from 'node:child_process';
import path from 'node:path';

export interface CommandResult {
  code: number | null;
  /** stdout alone, for commands whose output is data (the first 4 MiB). */
  stdout: string;
  /** stdout and stderr interleaved, the last 64 KiB. */
  output: string;
  timedOut: boolean;
}

const Keep = 64 * 1024;

/** The `PG*` variables libpq-based tools read, from a connection URL. */
export function pgEnv(url: string): Record<string, string> {
  const u = new URL(url);
  const env: Record<string, string> = {
    DATABASE_URL: url,
    PGHOST: u.hostname,
    PGPORT: u.port || '5432',
    PGUSER: decodeURIComponent(u.username),
    PGDATABASE: decodeURIComponent(u.pathname.slice(1)),
  };
  if (u.password) env.PGPASSWORD = decodeURIComponent(u.password);
  return env;
}

/** Runs a shell command; kills its process group at the timeout. Never throws for a failing command. */
export function runCommand(
  command: string,
  options: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs: number; signal?: AbortSignal },
): Promise<CommandResult> {
  return new Promise((resolve) => {
    const child = spawn(command, {
      cwd: options.cwd,
      env: options.env,
      shell: true,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    let stdout = '';
    const take = (chunk: Buffer) => {
      output += chunk.toString('utf8');
      if (output.length > Keep * 2) output = output.slice(-Keep);
    };
    child.stdout.on('data', (chunk: Buffer) => {
      if (stdout.length < 4 * 1024 * 1024) stdout += chunk.toString('utf8');
      take(chunk);
    });
    child.stderr.on('data', take);
    let timedOut = false;
    const kill = (signal: NodeJS.Signals) => {
      try {
        // Negative pid: the shell and everything it started.
        if (child.pid) process.kill(-child.pid, signal);
      } catch {
        // Already gone.
      }
    };
    const stop = () => {
      timedOut = true;
      kill('SIGTERM');
      setTimeout(() => kill('SIGKILL'), 5_000).unref();
    };
    const timer = setTimeout(stop, options.timeoutMs);
    options.signal?.addEventListener('abort', stop, { once: true });
    const done = () => {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', stop);
    };
    child.on('error', (error) => {
      done();
      resolve({ code: null, stdout, output: `${output}${error.message}`, timedOut });
    });
    child.on('close', (code) => {
      done();
      resolve({ code, stdout, output: output.slice(-Keep), timedOut });
    });
  });
}

/** Fills `{name}` placeholders, quoting values the shell would split or expand. */
export function fillCommand(template: string, values: Record<string, string>): string {
  return Object.entries(values).reduce(
    (text, [name, value]) => text.replaceAll(`{${name}}`, shellWord(value)),
    template,
  );
}

function shellWord(value: string): string {
  return /^[\w.,:@%+=/-]+$/.test(value) ? value : `'${value.replaceAll("'", "'\\''")}'`;
}

/** The last lines of a command's output, for a finding's detail. */
export function outputTail(result: CommandResult, lines = 30): string {
  return result.output.trimEnd().split('\n').slice(-lines).join('\n');
}

/** One frame of a Python traceback: `File "migrations/0003_x.py", line 9, in down`. */
export interface TracebackFrame {
  file: string;
  line: number;
  function: string;
}

/**
 * The last Python traceback in a command's output: its frames, outermost first, and the line that
 * names the exception (`psycopg2.errors.UndefinedColumn: column "nme" does not exist`), which
 * comes before the lines a driver adds (`LINE 1: ...`, `HINT: ...`).
 */
export function pythonTraceback(output: string): { frames: TracebackFrame[]; exception: string } | undefined {
  const lines = output.split('\n');
  let start = -1;
  for (let i = lines.length - 1; i >= 0 && start < 0; i--)
    if (lines[i]?.trim() === 'Traceback (most recent call last):') start = i;
  if (start < 0) return undefined;
  const frames: TracebackFrame[] = [];
  for (const line of lines.slice(start + 1)) {
    const frame = /^\s+File "(.+)", line (\d+), in (.+)$/.exec(line);
    if (frame)
      frames.push({ file: frame[1] ?? '', line: Number(frame[2]), function: (frame[3] ?? '').trim() });
    // Indented lines are the frames' code and Python 3.11's carets; the first other line is the exception.
    else if (line.trim() && !/^\s/.test(line)) return { frames, exception: line.trim() };
  }
  return undefined;
}

const shorten = (line: string) => (line.length > 300 ? `${line.slice(0, 297)}...` : line);

/**
 * The line of a failed command's output that says what went wrong: the exception of a Python
 * traceback, else the last `SomeError: ...` line, else the last line.
 */
export function errorLine(output: string): string {
  const traceback = pythonTraceback(output);
  if (traceback) return shorten(traceback.exception);
  const lines = output
    .trimEnd()
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const named = [...lines].reverse().find((l) => /^[\w.]*(Error|Exception)\b[^:]*:\s*\S/.test(l));
  return shorten(named ?? lines.at(-1) ?? '');
}

/**
 * A failed step command as a finding's message (what ran, how it ended, the error line), detail
 * (the output) and, when the output is a traceback through the migration's own file, its line there.
 */
export function commandFailure(
  command: string,
  result: CommandResult,
  migration?: { file: string; cwd: string },
  /** `answered`: a long-lived runner said the step failed (it did not exit). */
  how: 'exited' | 'answered' = 'exited',
): { message: string; detail?: string; line?: number } {
  const line = errorLine(result.output);
  const target = migration && path.resolve(migration.cwd, migration.file);
  const frame =
    target &&
    pythonTraceback(result.output)
      ?.frames.filter((f) => path.resolve(migration.cwd, f.file) === target)
      .at(-1);
  return {
    message: `\`${command}\` ${result.timedOut ? 'was stopped' : how === 'answered' ? 'failed' : `exited with ${result.code ?? 'a signal'}`}${line ? `: ${line}` : ''}`,
    detail: outputTail(result) || undefined,
    ...(frame ? { line: frame.line } : {}),
  };
}
