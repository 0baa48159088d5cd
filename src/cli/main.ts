#!/usr/bin/env node
/**
 * The `kms-envelope` bin. Sets the exit status and lets Node exit on its own, so everything
 * written to stdout (a pipe, a file) is flushed first.
 */
import { run } from './run.js';

process.exitCode = await run(process.argv.slice(2));
