import { spawn } from 'node:child_process';

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

/**
 * The line of a failed command's output that says what went wrong: the last `SomeError: ...` line
 * (a Python traceback ends with it, followed by SQLAlchemy's background link), else the last line.
 */
export function errorLine(output: string): string {
  const lines = output
    .trimEnd()
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const named = [...lines].reverse().find((l) => /^[\w.]*(Error|Exception)\b[^:]*:\s*\S/.test(l));
  const line = named ?? lines.at(-1) ?? '';
  return line.length > 300 ? `${line.slice(0, 297)}...` : line;
}

/** A failed step command as a finding's message (what ran, how it ended, the error line) and detail (the output). */
export function commandFailure(command: string, result: CommandResult): { message: string; detail?: string } {
  const line = errorLine(result.output);
  return {
    message: `\`${command}\` ${result.timedOut ? 'was stopped' : `exited with ${result.code ?? 'a signal'}`}${line ? `: ${line}` : ''}`,
    detail: outputTail(result) || undefined,
  };
}
