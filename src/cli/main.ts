#!/usr/bin/env node
/**
 * The `kms-envelope` bin. Sets the exit status and lets Node exit on its own, so everything
 * written to stdout (a pipe, a file) is flushed first.
 */
import { run } from './run.js';

// The AWS SDK warns on Node < 22 about its own future support policy. That is a note for library
// maintainers, not for someone encrypting a file: keep the CLI's stderr for the CLI's own output
// (an explicit setting in the environment wins).
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

process.exitCode = await run(process.argv.slice(2));
