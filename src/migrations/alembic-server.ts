import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { registerCleanup } from '../lifecycle.js';
import { type CommandResult, fillCommand } from '../shell.js';

/**
 * One Python interpreter of the project's own environment that runs alembic's command API for
 * every step of the run: `upgrade <rev>` and `downgrade -1`, as the `alembic` command would, but
 * without starting Python, importing alembic, SQLAlchemy and the project's models, and reading
 * every revision file again for each step. Each step still gets a fresh `Config`, its own
 * environment (the scratch database's URL) and a fresh run of env.py; its output is captured per
 * step. A step that times out or takes the interpreter down ends it; the next step starts another.
 *
 * Requests go on stdin as JSON lines; answers come on file descriptor 3, so that whatever the
 * migrations print cannot be mistaken for one.
 */
const Server = String.raw`
import contextlib, io, json, os, sys, traceback
answers = os.fdopen(3, "w", buffering=1)
def answer(value):
    answers.write(json.dumps(value) + "\n")
try:
    import alembic
    from alembic import command
    from alembic.config import Config
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError
except BaseException as error:
    answer({"ready": False, "error": "%s: %s" % (type(error).__name__, error)})
    sys.exit(0)
if "--cwd-on-path" in sys.argv:
    sys.path.insert(0, os.getcwd())
# alembic reads every revision file for each command; the files do not change during a run.
_from_config = ScriptDirectory.from_config.__func__
_scripts = {}
def _cached(cls, config):
    key = (os.path.abspath(config.config_file_name or ""), config.get_main_option("script_location"))
    if key not in _scripts:
        _scripts[key] = _from_config(cls, config)
    return _scripts[key]
ScriptDirectory.from_config = classmethod(_cached)
base_env = dict(os.environ)
answer({"ready": True, "version": alembic.__version__})
for line in sys.stdin:
    request = json.loads(line)
    os.environ.clear()
    os.environ.update(base_env)
    os.environ.update(request["env"])
    output = io.StringIO()
    code = 0
    with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
        try:
            config = Config("alembic.ini")
            name, target = request["argv"]
            getattr(command, name)(config, target)
        except CommandError as error:
            print("FAILED: %s" % error)
            code = 1
        except SystemExit as error:
            code = error.code if isinstance(error.code, int) else (0 if error.code is None else 1)
            if error.code is not None and not isinstance(error.code, int):
                print(error.code)
        except BaseException:
            traceback.print_exc()
            code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    answer({"code": code, "output": output.getvalue()[-65536:]})
`;

/**
 * The interpreter behind an alembic command, as a shell command that runs a script with it:
 * `python3 -m alembic` -> `python3`; `poetry run alembic` (uv, pipenv, ...) -> `poetry run python`;
 * `alembic` or a path to it -> the interpreter its first line names. Undefined when the command
 * is something else (a wrapper script): then every step runs the command itself.
 */
export function interpreterOf(
  command: string,
  env: NodeJS.ProcessEnv,
  cwd: string,
): { command: string; cwdOnPath: boolean } | undefined {
  const trimmed = command.trim();
  const module = /^(.*\S)\s+-m\s+alembic$/.exec(trimmed);
  if (module) return { command: module[1] as string, cwdOnPath: true };
  const words = trimmed.split(/\s+/);
  const last = words.at(-1) ?? '';
  if (path.basename(last) !== 'alembic') return undefined;
  if (words.length > 1) {
    // `poetry run alembic`: the same runner, with the environment's python.
    if (last !== 'alembic') return undefined;
    return { command: [...words.slice(0, -1), 'python'].join(' '), cwdOnPath: false };
  }
  const file = last.includes('/') ? path.resolve(cwd, last) : onPath(last, env);
  if (!file) return undefined;
  let first: string;
  try {
    first = readFileSync(file, 'utf8').slice(0, 256).split('\n')[0] ?? '';
  } catch {
    return undefined;
  }
  const shebang = /^#!\s*(\S+(?:\s+\S+)?)\s*$/.exec(first);
  if (!shebang || !/python/.test(shebang[1] ?? '')) return undefined;
  return { command: shebang[1] as string, cwdOnPath: false };
}

function onPath(name: string, env: NodeJS.ProcessEnv): string | undefined {
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const file = path.join(dir, name);
    if (existsSync(file)) return file;
  }
  return undefined;
}

interface Pending {
  resolve(result: CommandResult): void;
}

/** A running interpreter; `undefined` answers mean it could not start (then steps run the command). */
export class AlembicServer {
  private child: ChildProcess | undefined;
  private ready: Promise<boolean> | undefined;
  private pending: Pending | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private answers = '';
  /** What the interpreter wrote outside a step's capture (a crash, a C library): kept for the step. */
  private stray = '';
  private unregister: (() => void) | undefined;
  /** Why it could not start, once known. */
  startError: string | undefined;

  constructor(
    private readonly interpreter: { command: string; cwdOnPath: boolean },
    private readonly cwd: string,
    private readonly env: NodeJS.ProcessEnv,
  ) {}

  /** Runs `alembic <name> <target>`; undefined when the interpreter cannot run alembic at all. */
  run(
    argv: [string, string],
    env: Record<string, string>,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<CommandResult | undefined> {
    const next = this.queue.then(() => this.send(argv, env, timeoutMs, signal));
    this.queue = next.catch(() => {});
    return next;
  }

  private async send(
    argv: [string, string],
    env: Record<string, string>,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<CommandResult | undefined> {
    if (!(await this.start())) return undefined;
    const child = this.child as ChildProcess;
    this.stray = '';
    return new Promise<CommandResult>((resolve) => {
      let timedOut = false;
      const finish = (result: CommandResult) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', stop);
        this.pending = undefined;
        resolve(result);
      };
      const stop = () => {
        timedOut = true;
        // Python cannot be interrupted inside a driver call: the interpreter goes, the next starts anew.
        this.end('SIGKILL');
        finish({ code: null, stdout: '', output: this.stray, timedOut });
      };
      const timer = setTimeout(stop, timeoutMs);
      signal?.addEventListener('abort', stop, { once: true });
      this.pending = {
        resolve: (result) => finish({ ...result, timedOut }),
      };
      child.stdin?.write(`${JSON.stringify({ argv, env })}\n`);
    });
  }

  private start(): Promise<boolean> {
    if (this.ready && this.child) return this.ready;
    if (this.startError) return Promise.resolve(false);
    this.ready = new Promise<boolean>((resolve) => {
      // The script travels on the command line: no file to write, none to leave behind.
      const child = spawn(
        `${this.interpreter.command} -c ${fillCommand('{script}', { script: Server })}${this.interpreter.cwdOnPath ? ' --cwd-on-path' : ''}`,
        {
          cwd: this.cwd,
          env: this.env,
          shell: true,
          detached: true,
          stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
        },
      );
      this.child = child;
      this.answers = '';
      this.unregister = registerCleanup({
        sync: () => this.end('SIGKILL'),
        async: async () => this.end('SIGKILL'),
      });
      let started = false;
      const keep = (chunk: Buffer) => {
        this.stray = `${this.stray}${chunk.toString('utf8')}`.slice(-64 * 1024);
      };
      child.stdout?.on('data', keep);
      child.stderr?.on('data', keep);
      child.stdin?.on('error', () => {});
      (child.stdio[3] as Readable).on('data', (chunk: Buffer) => {
        this.answers += chunk.toString('utf8');
        let at = this.answers.indexOf('\n');
        while (at >= 0) {
          const line = this.answers.slice(0, at);
          this.answers = this.answers.slice(at + 1);
          at = this.answers.indexOf('\n');
          const answer = JSON.parse(line) as {
            ready?: boolean;
            error?: string;
            code?: number;
            output?: string;
          };
          if (!started) {
            started = true;
            if (!answer.ready) this.startError = answer.error ?? 'alembic could not be imported';
            resolve(!!answer.ready);
            continue;
          }
          this.pending?.resolve({
            code: answer.code ?? 1,
            stdout: '',
            output: answer.output ?? '',
            timedOut: false,
          });
        }
      });
      child.on('error', (error) => {
        this.startError ??= error.message;
        if (!started) resolve(false);
      });
      child.on('exit', (code, signal) => {
        if (this.child === child) this.child = undefined;
        this.unregister?.();
        if (!started) {
          started = true;
          this.startError ??= `the interpreter exited with ${code ?? signal}: ${this.stray.trim().split('\n').at(-1) ?? ''}`;
          resolve(false);
          return;
        }
        // A step that ended the interpreter (sys.exit in C code, a crash): its own output is lost.
        this.pending?.resolve({ code: code ?? null, stdout: '', output: this.stray, timedOut: false });
      });
    });
    return this.ready;
  }

  private end(signal: NodeJS.Signals): void {
    const child = this.child;
    this.child = undefined;
    this.ready = undefined;
    if (!child?.pid) return;
    try {
      process.kill(-child.pid, signal);
    } catch {
      // Already gone.
    }
  }

  /** Stops the interpreter (end of run). */
  async close(): Promise<void> {
    const child = this.child;
    if (!child) return;
    child.stdin?.end();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.end('SIGKILL');
        resolve();
      }, 2_000);
      child.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
    });
    this.child = undefined;
    this.unregister?.();
  }
}
