import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fillCommand } from '../shell.js';
import { type Answer, type StepProtocol, StepServer } from './step-server.js';

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
# The steps of one runner use one database: keep env.py's connection between them instead of
# connecting (and setting up the dialect) again for each, reset as a new session would be.
_engines = {}
try:
    import sqlalchemy, sqlalchemy.engine, sqlalchemy.engine.create as _create
    from sqlalchemy import event as _event, pool as _pool
    _new_engine = _create.create_engine
    def _discard(dbapi_connection, record):
        if dbapi_connection is None:
            return
        try:
            autocommit = dbapi_connection.autocommit
            dbapi_connection.autocommit = True
            cursor = dbapi_connection.cursor()
            cursor.execute("DISCARD ALL")
            cursor.close()
            dbapi_connection.autocommit = autocommit
        except Exception:
            record.invalidate()
    def _kept_engine(url, **kwargs):
        try:
            text = url.render_as_string(hide_password=False) if hasattr(url, "render_as_string") else str(url)
            key = (text, repr(sorted(kwargs.items(), key=lambda kv: kv[0])))
        except Exception:
            return _new_engine(url, **kwargs)
        if kwargs.get("_is_async") or not text.startswith("postgresql"):
            return _new_engine(url, **kwargs)
        if key not in _engines:
            options = {k: v for k, v in kwargs.items() if k not in ("poolclass", "pool_size", "max_overflow")}
            engine = _new_engine(url, poolclass=_pool.QueuePool, pool_size=1, max_overflow=10, pool_pre_ping=True, **options)
            _event.listen(engine, "checkin", _discard)
            _engines[key] = engine
        return _engines[key]
    _create.create_engine = _kept_engine
    sqlalchemy.create_engine = _kept_engine
    sqlalchemy.engine.create_engine = _kept_engine
except Exception:
    pass
def _dispose():
    for engine in _engines.values():
        try:
            engine.dispose()
        except Exception:
            pass
    _engines.clear()
base_env = dict(os.environ)
answer({"ready": True, "version": alembic.__version__})
for line in sys.stdin:
    request = json.loads(line)
    if request.get("release"):
        _dispose()
        answer({"code": 0, "output": ""})
        continue
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

/** Requests as JSON lines on stdin; the script's answers as JSON lines on fd 3. */
const AlembicProtocol: StepProtocol = {
  channel: 'fd3',
  handshake: true,
  request: (argv, env) => `${JSON.stringify({ argv, env })}\n`,
  release: () => `${JSON.stringify({ release: true })}\n`,
  parse(line) {
    try {
      return JSON.parse(line) as Answer;
    } catch {
      return undefined;
    }
  },
};

/** alembic's command API in `interpreter`, for every step of the run (see `Server`). */
export function alembicServer(
  interpreter: { command: string; cwdOnPath: boolean },
  cwd: string,
  env: NodeJS.ProcessEnv,
): StepServer {
  // The script travels on the command line: no file to write, none to leave behind.
  return new StepServer(
    `${interpreter.command} -c ${fillCommand('{script}', { script: Server })}${interpreter.cwdOnPath ? ' --cwd-on-path' : ''}`,
    AlembicProtocol,
    cwd,
    env,
  );
}
