import { createRequire as __pgmvCreateRequire } from 'node:module';
import { fileURLToPath as __pgmvFileURLToPath } from 'node:url';
import { dirname as __pgmvDirname } from 'node:path';
const __filename = __pgmvFileURLToPath(import.meta.url);
const __dirname = __pgmvDirname(__filename);
const require = __pgmvCreateRequire(import.meta.url);
export const id = 416;
export const ids = [416];
export const modules = {

/***/ 92416:
/***/ ((__unused_webpack_module, __webpack_exports__, __webpack_require__) => {


// EXPORTS
__webpack_require__.d(__webpack_exports__, {
  run: () => (/* binding */ run)
});

// EXTERNAL MODULE: external "node:fs/promises"
var promises_ = __webpack_require__(51455);
// EXTERNAL MODULE: external "node:path"
var external_node_path_ = __webpack_require__(76760);
var external_node_path_default = /*#__PURE__*/__webpack_require__.n(external_node_path_);
// EXTERNAL MODULE: ./node_modules/@actions/core/lib/core.js + 14 modules
var core = __webpack_require__(96421);
// EXTERNAL MODULE: ./src/core/errors.ts
var errors = __webpack_require__(74296);
// EXTERNAL MODULE: ./src/core/format.ts
var format = __webpack_require__(96228);
// EXTERNAL MODULE: ./src/core/junit.ts
var junit = __webpack_require__(75067);
// EXTERNAL MODULE: ./src/core/redact.ts
var redact = __webpack_require__(12258);
// EXTERNAL MODULE: ./src/core/report.ts
var core_report = __webpack_require__(88557);
// EXTERNAL MODULE: external "node:fs"
var external_node_fs_ = __webpack_require__(73024);
;// CONCATENATED MODULE: ./src/github/event.ts

/** The run's context from the environment; the event file is read here and nowhere else. */
function readGitHubRun(env) {
    let payload = {};
    if (env.GITHUB_EVENT_PATH) {
        try {
            payload = JSON.parse((0,external_node_fs_.readFileSync)(env.GITHUB_EVENT_PATH, 'utf8'));
        }
        catch {
            // No readable event: no pull request to comment on, no base to compare with.
        }
    }
    const [owner, repo] = (env.GITHUB_REPOSITORY ?? '').split('/');
    const serverUrl = env.GITHUB_SERVER_URL ?? 'https://github.com';
    return {
        owner,
        repo,
        pr: payload.pull_request?.number,
        sha: payload.pull_request?.head?.sha ?? env.GITHUB_SHA,
        baseRef: baseRefOf(env, payload),
        serverUrl,
        runUrl: owner && repo && env.GITHUB_RUN_ID
            ? `${serverUrl}/${owner}/${repo}/actions/runs/${env.GITHUB_RUN_ID}`
            : undefined,
        workspace: env.GITHUB_WORKSPACE ?? process.cwd(),
    };
}
/**
 * The base branch of the run's pull request: `GITHUB_BASE_REF` on pull_request and
 * pull_request_target events, the queue's base branch on merge_group events; else undefined.
 */
function baseRefOfEvent(env) {
    return readGitHubRun(env).baseRef;
}
function baseRefOf(env, payload) {
    if (env.GITHUB_BASE_REF)
        return env.GITHUB_BASE_REF;
    const ref = env.GITHUB_EVENT_NAME === 'merge_group' ? payload.merge_group?.base_ref : undefined;
    return ref ? ref.replace(/^refs\/heads\//, '') : undefined;
}

// EXTERNAL MODULE: ./src/core/events.ts
var events = __webpack_require__(87842);
;// CONCATENATED MODULE: ./src/github/progress.ts



/** The Action's rendering of the checks' events: one log group per migration set, a line per step. */
function actionProgress() {
    let open = false;
    const end = () => {
        if (open)
            core/* endGroup */.N4();
        open = false;
    };
    return {
        emit(event) {
            if (event.kind === 'set') {
                end();
                core/* startGroup */.Oh(`Verify ${event.set} (${(0,format/* plural */.L)(event.migrations, 'migration')})`);
                open = true;
                return;
            }
            const line = (0,events/* progressLine */.o)(event);
            if (line !== undefined)
                core/* info */.pq(line);
        },
        end,
    };
}

// EXTERNAL MODULE: external "node:crypto"
var external_node_crypto_ = __webpack_require__(77598);
// EXTERNAL MODULE: external "node:os"
var external_node_os_ = __webpack_require__(48161);
var external_node_os_default = /*#__PURE__*/__webpack_require__.n(external_node_os_);
// EXTERNAL MODULE: ./node_modules/@actions/github/lib/github.js + 22 modules
var github = __webpack_require__(92413);
// EXTERNAL MODULE: ./src/core/markdown.ts
var markdown = __webpack_require__(16706);
;// CONCATENATED MODULE: ./src/core/comment.ts

/** GitHub refuses comment bodies longer than this many characters. */
const CommentLimit = 65_536;
const MarkerPattern = /<!-- pg-migrate-verify set="([^"]*)"(?: major="(\d*)")? digest="([0-9a-f]*)" result="(\w+)" -->/;
function markerOf(marker) {
    return `<!-- pg-migrate-verify set="${encodeURIComponent(marker.set)}"${marker.major ? ` major="${marker.major}"` : ''} digest="${marker.digest}" result="${marker.result}" -->`;
}
function parseMarker(body) {
    const m = MarkerPattern.exec(body ?? '');
    if (!m)
        return undefined;
    return {
        set: decodeURIComponent(m[1] ?? ''),
        ...(m[2] ? { major: Number(m[2]) } : {}),
        digest: m[3] ?? '',
        result: (m[4] ?? 'error'),
    };
}
/** True when a comment's marker is the one for this set and requested major. */
function sameComment(marker, set, major) {
    return !!marker && marker.set === set && marker.major === major;
}
/** The report of one migration set: what its own comment shows. */
function reportForSet(report, set) {
    const accepted = report.accepted?.filter((f) => f.set === set);
    return {
        ...report,
        sets: report.sets.filter((s) => s.name === set),
        findings: report.findings.filter((f) => f.set === set),
        ...(accepted ? { accepted } : {}),
    };
}
/**
 * The report without what changes from run to run when nothing else does (durations), so that an
 * unchanged result renders to the same text and its comment is left alone.
 */
function stableReport(report) {
    return {
        ...report,
        timings: {},
        sets: report.sets.map((s) => ({
            ...s,
            migrations: s.migrations.map((m) => ({
                ...m,
                up: m.up && { ...m.up, ms: 0 },
                down: m.down && { ...m.down, ms: 0 },
                ...(m.assertions ? { assertions: m.assertions.map((a) => ({ ...a, ms: 0 })) } : {}),
            })),
        })),
    };
}
/**
 * The comment for one set: the report, a line when it passes after a failing run, the marker; cut
 * down to the verdict, the failing findings and a pointer to the job summary when too long.
 */
function commentBody(report, marker, options = {}) {
    const limit = options.limit ?? CommentLimit;
    const fixed = options.previous && options.previous !== 'passed' && report.result === 'passed'
        ? `> ✅ Fixed: the previous run of this check ${options.previous === 'failed' ? 'failed' : 'could not check'}; this one passes.\n\n`
        : '';
    const tail = `\n${markerOf(marker)}\n`;
    const full = `${fixed}${(0,markdown/* renderMarkdown */.Gc)(report, options)}${tail}`;
    if (full.length <= limit)
        return full;
    return shortened(report, fixed, tail, limit, options);
}
function shortened(report, fixed, tail, limit, options) {
    const head = (0,markdown/* renderHeader */.wZ)(report, options).join('\n').trimEnd();
    const pointer = `The full report is too long for a comment: ${options.summaryUrl ? `see the [job summary](${options.summaryUrl})` : 'see the job summary of this run'}.`;
    const errors = report.findings.filter((f) => f.severity === 'error');
    const lines = [];
    let used = fixed.length + head.length + pointer.length + tail.length + 100;
    for (const f of errors) {
        const text = (0,markdown/* renderFindingLine */.gz)(f, options);
        if (used + text.length + 1 > limit)
            break;
        lines.push(text);
        used += text.length + 1;
    }
    const left = errors.length - lines.length;
    const more = left > 0 ? `\n\n…and ${left} more failing finding${left === 1 ? '' : 's'}.` : '';
    const list = lines.length ? `\n\n### Failing findings\n\n${lines.join('\n')}${more}` : more;
    return `${fixed}${head}\n\n${pointer}${list}\n${tail}`;
}

;// CONCATENATED MODULE: ./src/github/sticky-comment.ts

/** Who the token is: comments by anyone else are never edited. */
async function identity(octokit) {
    try {
        const { data } = await octokit.rest.users.getAuthenticated();
        return data.login;
    }
    catch {
        // The Actions token (an app installation) may not read /user; it writes as this bot.
        return 'github-actions[bot]';
    }
}
/**
 * Creates or updates the one comment for a set (and requested major) on the pull request: found again by its hidden
 * marker among all the PR's comments (every page), only among the token's own comments, and left
 * alone when its content digest has not changed. `render` gets the verdict of the previous run.
 */
async function upsertComment(octokit, pr, key, render) {
    const me = await identity(octokit);
    const comments = await octokit.paginate(octokit.rest.issues.listComments, {
        owner: pr.owner,
        repo: pr.repo,
        issue_number: pr.number,
        per_page: 100,
    });
    // Each job of a version matrix has its own comment, so no job overwrites another's verdict.
    const mine = comments.find((c) => c.user?.login === me && sameComment(parseMarker(c.body), key.set, key.major));
    const previous = parseMarker(mine?.body);
    const { body, digest } = render(previous?.result);
    if (!mine) {
        await octokit.rest.issues.createComment({
            owner: pr.owner,
            repo: pr.repo,
            issue_number: pr.number,
            body,
        });
        return 'created';
    }
    if (previous?.digest === digest)
        return 'unchanged';
    await octokit.rest.issues.updateComment({ owner: pr.owner, repo: pr.repo, comment_id: mine.id, body });
    return 'updated';
}

;// CONCATENATED MODULE: ./src/github/publish.ts










/**
 * Everything the Action tells GitHub about a run: the log summary, the JSON report and the
 * outputs, the job summary, annotations, the pull request comment. It never fails the step:
 * the caller decides that from the report.
 */
async function publish(report, run, options) {
    core/* info */.pq((0,markdown/* renderSummary */.Br)(report));
    const fileUrl = fileUrlOf(run, options.workingDirectory);
    await writeJsonReport(report);
    await writeJobSummary((0,markdown/* renderMarkdown */.Gc)(report, { major: options.major, ...(fileUrl ? { fileUrl } : {}) }));
    annotate(report, run, options.workingDirectory);
    if (options.comment && options.token)
        await postComments(report, run, options.token, { major: options.major, fileUrl });
    core/* setOutput */.uH('result', report.result);
    core/* setOutput */.uH('findings', String(report.findings.length));
    core/* setOutput */.uH('migrations', String(report.sets.reduce((n, s) => n + s.migrations.length, 0)));
    // The deploy gate: how many migrations a deploy would run (every set's target together).
    if (report.sets.some((s) => s.target))
        core/* setOutput */.uH('pending', String(report.sets.reduce((n, s) => n + (s.target?.pending.length ?? 0), 0)));
}
/** Links to files (and lines) at the commit the run checked, when the run knows its repository. */
function fileUrlOf(run, workingDirectory) {
    if (!run.owner || !run.sha)
        return undefined;
    return (file, line) => `${run.serverUrl}/${run.owner}/${run.repo}/blob/${run.sha}/${repoPath(run, workingDirectory, file)}${line ? `#L${line}` : ''}`;
}
/** A report path (relative to the working directory) as a path in the repository. */
function repoPath(run, workingDirectory, file) {
    return external_node_path_default().relative(run.workspace, external_node_path_default().resolve(workingDirectory, file)).split((external_node_path_default()).sep).join('/');
}
async function writeJsonReport(report) {
    const file = external_node_path_default().join(process.env.RUNNER_TEMP ?? external_node_os_default().tmpdir(), 'pg-migrate-verify', 'report.json');
    try {
        await (0,promises_.mkdir)(external_node_path_default().dirname(file), { recursive: true });
        await (0,promises_.writeFile)(file, `${JSON.stringify(report, null, 2)}\n`);
        core/* setOutput */.uH('report', file);
    }
    catch (error) {
        core/* warning */.$e(`Could not write the JSON report to ${file}: ${(0,errors/* messageOf */.bD)(error)}`);
    }
}
async function writeJobSummary(markdown) {
    if (!process.env.GITHUB_STEP_SUMMARY)
        return;
    try {
        await core/* summary */.z.addRaw(markdown).write();
    }
    catch (error) {
        core/* warning */.$e(`Could not write the job summary: ${(0,errors/* messageOf */.bD)(error)}`);
    }
}
/** At most this many annotations: GitHub shows few per step, and a huge history must not flood the UI. */
const MaxAnnotations = 50;
function annotate(report, run, workingDirectory) {
    const located = report.findings.filter((f) => f.file);
    for (const f of located.slice(0, MaxAnnotations)) {
        const props = {
            title: `pg-migrate-verify ${f.check}${f.migration ? `: ${f.migration}` : ''}`,
            file: repoPath(run, workingDirectory, f.file),
            ...(f.line ? { startLine: f.line } : {}),
        };
        if (f.severity === 'error')
            core/* error */.z3(f.message, props);
        else
            core/* warning */.$e(f.message, props);
    }
    if (located.length > MaxAnnotations)
        core/* notice */.lm(`${located.length - MaxAnnotations} more findings are not annotated; every finding is in the job summary.`);
}
/** One comment per migration set (and requested major); a run that could not check at all has one for the whole run. */
async function postComments(report, run, token, { major, fileUrl }) {
    if (!run.pr || !run.owner || !run.repo) {
        core/* info */.pq('Not a pull request: no comment (the job summary has the report).');
        return;
    }
    const pr = { owner: run.owner, repo: run.repo, number: run.pr };
    const options = { ...(fileUrl ? { fileUrl } : {}), summaryUrl: run.runUrl, major };
    const octokit = (0,github/* getOctokit */.Q)(token);
    const names = report.sets.length ? report.sets.map((s) => s.name) : [''];
    for (const name of names) {
        const part = name ? reportForSet(report, name) : report;
        const digest = (0,external_node_crypto_.createHash)('sha256')
            .update((0,markdown/* renderMarkdown */.Gc)(stableReport(part), options))
            .digest('hex')
            .slice(0, 16);
        try {
            const done = await upsertComment(octokit, pr, { set: name, major }, (previous) => ({
                digest,
                body: commentBody(part, { set: name, ...(major ? { major } : {}), digest, result: part.result }, { ...options, previous }),
            }));
            core/* info */.pq(`Pull request comment${name ? ` for ${name}` : ''}${major ? ` on PostgreSQL ${major}` : ''}: ${done}.`);
        }
        catch (error) {
            const status = error.status;
            core/* warning */.$e(status === 403 || status === 404
                ? `Could not comment on pull request #${run.pr}: the token may not write to it (${(0,errors/* messageOf */.bD)(error)}). Give the job \`permissions: pull-requests: write\`; pull requests from forks get a read-only token, so their report is in the job summary only. Set comment: false to stop trying.`
                : `Could not comment on pull request #${run.pr}: ${(0,errors/* messageOf */.bD)(error)}. The report is in the job summary.`);
            return;
        }
    }
}

// EXTERNAL MODULE: ./src/postgres/index.ts + 3 modules
var postgres = __webpack_require__(78153);
// EXTERNAL MODULE: ./src/settings.ts + 18 modules
var src_settings = __webpack_require__(44995);
// EXTERNAL MODULE: ./src/verify.ts + 32 modules
var verify = __webpack_require__(65980);
;// CONCATENATED MODULE: ./src/main.ts














/** The Action: read inputs, verify, publish. The one place that calls setFailed. */
async function run() {
    const github = readGitHubRun(process.env);
    const raw = readInputs(github);
    const log = {
        info: (m) => core/* info */.pq((0,redact/* redactUrls */.s)(m)),
        warn: (m) => core/* warning */.$e((0,redact/* redactUrls */.s)(m)),
        debug: (m) => core/* debug */.Yz((0,redact/* redactUrls */.s)(m)),
    };
    let report;
    let settings;
    const progress = actionProgress();
    try {
        // Paths (working-directory included) are relative to the checkout, as in every other action.
        settings = await (0,src_settings/* resolveSettings */.Mo)(raw, github.workspace, { pullRequest: github.baseRef !== undefined });
        log.debug(`settings: ${JSON.stringify({ ...settings, githubToken: settings.githubToken ? '***' : undefined, checks: [...settings.checks] })}`);
        report = await (0,verify/* verify */.M)(settings, {
            log,
            emit: progress.emit,
            startPostgres: postgres/* startPostgres */.C,
            now: () => performance.now(),
        });
    }
    catch (error) {
        if (!(error instanceof errors/* CannotCheck */.k_))
            log.debug(error?.stack ?? String(error));
        report = (0,core_report/* errorReport */.ZV)((0,redact/* redactUrls */.s)((0,errors/* messageOf */.bD)(error)));
    }
    finally {
        progress.end();
    }
    await publish(report, github, {
        workingDirectory: settings?.workingDirectory ?? github.workspace,
        comment: settings?.comment ?? raw[src_settings/* Inputs */.G0.Comment]?.toLowerCase() !== 'false',
        token: raw[src_settings/* Inputs */.G0.GithubToken],
        major: settings ? settings.postgresVersion : Number(raw[src_settings/* Inputs */.G0.PostgresVersion]) || undefined,
    });
    const junit = raw[src_settings/* Inputs */.G0.Junit];
    if (junit)
        await writeJunit(report, external_node_path_default().resolve(github.workspace, junit));
    if (report.result === 'error')
        core/* setFailed */.C1(`Could not check: ${report.error ?? 'unknown error'}`);
    else if (report.result === 'failed') {
        const failing = report.findings.filter((f) => f.severity === 'error').length;
        core/* setFailed */.C1(`${(0,format/* plural */.L)(report.findings.length, 'finding')} (${(0,format/* plural */.L)(failing, 'error')}); see the job summary.`);
    }
}
/**
 * Every input as given (empty inputs stay undefined, so the config file and defaults apply), with
 * the secrets among them masked in the log. On a pull request, the base ref is its base branch.
 */
function readInputs(github) {
    const raw = {};
    for (const key of Object.values(src_settings/* Inputs */.G0)) {
        const value = core/* getInput */.V4(key);
        if (value !== '')
            raw[key] = value;
    }
    if (raw[src_settings/* Inputs */.G0.BaseRef] === undefined && github.baseRef)
        raw[src_settings/* Inputs */.G0.BaseRef] = github.baseRef;
    for (const key of [src_settings/* Inputs */.G0.DatabaseUrl, src_settings/* Inputs */.G0.TargetDatabaseUrl]) {
        const password = (0,redact/* passwordOf */.N)(raw[key] ?? '');
        if (password)
            core/* setSecret */.Pq(password);
    }
    const token = raw[src_settings/* Inputs */.G0.GithubToken];
    if (token)
        core/* setSecret */.Pq(token);
    return raw;
}
/** The `junit` input: the report as JUnit XML at that path (a warning when it cannot be written). */
async function writeJunit(report, file) {
    try {
        await (0,promises_.mkdir)(external_node_path_default().dirname(file), { recursive: true });
        await (0,promises_.writeFile)(file, (0,junit/* renderJunit */.R)(report));
        core/* info */.pq(`JUnit report: ${file}`);
    }
    catch (error) {
        core/* warning */.$e(`Could not write the JUnit report to ${file}: ${(0,errors/* messageOf */.bD)(error)}. Check the 'junit' input.`);
    }
}


/***/ })

};
