#!/usr/bin/env node
// The CLI's entry point (package.json bin): the run lives in the shared bundle.
import { runCli } from '../lib/index.js';

process.exitCode = await runCli(process.argv.slice(2));
