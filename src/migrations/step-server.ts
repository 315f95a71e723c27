import { type ChildProcess, spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import { registerCleanup } from '../lifecycle.js';
import type { CommandResult } from '../shell.js';
import type { StepContext } from './types.js';

/**
 * How a long-lived runner talks: what one request looks like, where answers come from, and what
 * an answer says. A line that is no answer is the step's output.
 */
export interface StepProtocol {
  /** `fd3`: answers on file descriptor 3 (our own script); `stdout`: marked lines on stdout. */
  channel: 'fd3' | 'stdout';
  /** The runner says it is ready (or why not) before the first request. */
  handshake: boolean;
  request(argv: readonly string[], env: Record<string, string>): string;
  /** A request that lets go of what the process keeps for one database (its connections), if it keeps any. */
  release?(): string;
  /** The answer on `line`, or undefined when the line is no answer. */
  parse(line: string): Answer | undefined;
}

export interface Answer {
  ready?: boolean;
  /** Why the runner cannot serve (its handshake). */
  error?: string;
  code?: number;
  /** The step's output as the runner captured it; else what it wrote since the request. */
  output?: string;
}

/**
 * One process that runs every step of the run and stays alive between them (alembic's command API
 * in the project's interpreter; a runner's documented line protocol). Requests go one at a time. A
 * step that runs out of time, or that ends the process, fails alone: the next starts a new one.
 */
export class StepServer {
  private child: ChildProcess | undefined;
  private ready: Promise<boolean> | undefined;
  /** The step waiting for its answer; `answered` false when the process ended instead. */
  private pending: ((answer: Answer, answered?: boolean) => void) | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  /** What the process wrote since the last request (outside an answer). */
  private written = '';
  private unregister: (() => void) | undefined;
  /** Why it could not start, once known: then every request answers undefined. */
  startError: string | undefined;

  constructor(
    private readonly command: string,
    private readonly protocol: StepProtocol,
    private readonly cwd: string,
    private readonly env: NodeJS.ProcessEnv,
  ) {}

  /** Runs one step; undefined when the process cannot serve at all (the caller runs it another way). */
  run(
    argv: readonly string[],
    env: Record<string, string>,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<(CommandResult & { answered?: boolean }) | undefined> {
    const next = this.queue.then(() => this.send(argv, env, timeoutMs, signal));
    this.queue = next.catch(() => {});
    return next;
  }

  private async send(
    argv: readonly string[],
    env: Record<string, string>,
    timeoutMs: number,
    signal?: AbortSignal,
    request = this.protocol.request(argv, env),
  ): Promise<(CommandResult & { answered?: boolean }) | undefined> {
    if (!(await this.start())) return undefined;
    const child = this.child as ChildProcess;
    this.written = '';
    this.hold(child, true);
    return new Promise<CommandResult & { answered?: boolean }>((resolve) => {
      const finish = (result: CommandResult & { answered?: boolean }) => {
        clearTimeout(timer);
        this.hold(child, false);
        signal?.removeEventListener('abort', stop);
        this.pending = undefined;
        resolve(result);
      };
      const stop = () => {
        // A process cannot be interrupted inside a driver call: it goes, the next step starts anew.
        this.end();
        finish({ code: null, stdout: '', output: this.written, timedOut: true });
      };
      const timer = setTimeout(stop, timeoutMs);
      signal?.addEventListener('abort', stop, { once: true });
      this.pending = (answer, answered = true) =>
        finish({
          code: answer.code ?? 1,
          stdout: '',
          // A runner that names the error last: the line a finding quotes.
          output: answer.output ?? (answer.error ? `${this.written}${answer.error}\n` : this.written),
          timedOut: false,
          answered,
        });
      child.stdin?.write(request);
    });
  }

  private start(): Promise<boolean> {
    if (this.ready && this.child) return this.ready;
    if (this.startError) return Promise.resolve(false);
    const { protocol } = this;
    this.ready = new Promise<boolean>((resolve) => {
      const child = spawn(this.command, {
        cwd: this.cwd,
        env: this.env,
        shell: true,
        detached: true,
        stdio: ['pipe', 'pipe', 'pipe', protocol.channel === 'fd3' ? 'pipe' : 'ignore'],
      });
      this.child = child;
      this.written = '';
      this.unregister = registerCleanup({ sync: () => this.end(), async: async () => this.end() });
      let started = !protocol.handshake;
      if (started) resolve(true);
      const onAnswer = (line: string): boolean => {
        const answer = protocol.parse(line);
        if (!answer) return false;
        if (!started) {
          started = true;
          if (!answer.ready) this.startError = answer.error ?? 'it did not say it was ready';
          resolve(!!answer.ready);
        } else this.pending?.(answer);
        return true;
      };
      const lines = (onLine: (line: string) => void) => {
        let buffered = '';
        return (chunk: Buffer) => {
          buffered += chunk.toString('utf8');
          let at = buffered.indexOf('\n');
          while (at >= 0) {
            onLine(buffered.slice(0, at));
            buffered = buffered.slice(at + 1);
            at = buffered.indexOf('\n');
          }
        };
      };
      const keep = (text: string) => {
        this.written = `${this.written}${text}`.slice(-64 * 1024);
      };
      if (protocol.channel === 'fd3') {
        (child.stdio[3] as Readable).on(
          'data',
          lines((line) => onAnswer(line)),
        );
        child.stdout?.on('data', (chunk: Buffer) => keep(chunk.toString('utf8')));
      } else {
        child.stdout?.on(
          'data',
          lines((line) => {
            if (!onAnswer(line)) keep(`${line}\n`);
          }),
        );
      }
      child.stderr?.on('data', (chunk: Buffer) => keep(chunk.toString('utf8')));
      child.stdin?.on('error', () => {});
      child.on('error', (error) => {
        this.startError ??= error.message;
        if (!started) {
          started = true;
          resolve(false);
        }
      });
      child.on('exit', (code, signal) => {
        if (this.child === child) this.child = undefined;
        this.unregister?.();
        if (!started) {
          started = true;
          this.startError ??= `it exited with ${code ?? signal}${this.written.trim() ? `: ${this.written.trim().split('\n').at(-1)}` : ''}`;
          resolve(false);
          return;
        }
        // The step ended the process (an exit, a crash): what it wrote is all there is.
        this.pending?.({ code: code ?? 1, output: this.written }, false);
      });
    });
    return this.ready;
  }

  /**
   * Between steps the process must not keep ours alive (a caller that never closes it, a test):
   * it is held only while a step waits for its answer; at exit the cleanup ends it.
   */
  private hold(child: ChildProcess, on: boolean): void {
    for (const handle of [child, child.stdin, child.stdout, child.stderr, child.stdio[3]] as unknown[]) {
      const h = handle as { ref?: () => void; unref?: () => void } | null | undefined;
      if (on) h?.ref?.();
      else h?.unref?.();
    }
  }

  private end(): void {
    const child = this.child;
    this.child = undefined;
    this.ready = undefined;
    if (!child?.pid) return;
    try {
      // Negative pid: the shell and everything it started.
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }

  /** Asks the process to let go of the database it served (see `StepProtocol.release`). */
  async release(): Promise<void> {
    const line = this.protocol.release?.();
    if (!line || !this.child || this.startError !== undefined) return;
    const next = this.queue.then(() => this.send([], {}, 10_000, undefined, line));
    this.queue = next.catch(() => {});
    await next;
  }

  /** Ends the process: its input closes, and it gets two seconds to exit on its own. */
  async close(): Promise<void> {
    const child = this.child;
    if (!child) return;
    child.stdin?.end();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.end();
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

let pools = 0;

/**
 * Step servers for runners that work at once (a walk cut into ranges, each on its own database):
 * each runner gets a server of its own while it is open and hands it back when it closes, so that
 * the next runner (a rebuild) finds one running instead of starting a process again.
 */
export class StepServerPool {
  private readonly idle: StepServer[] = [];
  private readonly all: StepServer[] = [];
  private readonly key = `step-server-${++pools}`;

  constructor(private readonly make: () => StepServer) {}

  /** The server of the runner that runs this step. */
  for(context: StepContext): StepServer {
    const own = context.shared.get(this.key) as StepServer | undefined;
    if (own) return own;
    // One that could not start says why at once; another would only try again.
    const server = this.all.find((s) => s.startError !== undefined) ?? this.idle.pop() ?? this.add();
    context.shared.set(this.key, server);
    context.onClose(async () => {
      // The runner's database is dropped next: the process must not hold it open.
      await server.release();
      if (!this.idle.includes(server)) this.idle.push(server);
    });
    return server;
  }

  private add(): StepServer {
    const server = this.make();
    this.all.push(server);
    return server;
  }

  async close(): Promise<void> {
    await Promise.all(this.all.splice(0).map((s) => s.close()));
    this.idle.length = 0;
  }
}
