#!/usr/bin/env node
import { Command } from 'commander';
import { DispatchApiError } from './client/index.js';
import { program } from './cli/program.js';

/**
 * `dispatch`: runs the server (`serve`, `migrate`: the same code as `npm start` and
 * `npm run migrate`, loaded only when asked for) and operates a running one through its API
 * (src/cli/). Any error ends it with exit code 1 and the API's message on stderr.
 */
const root = program();
root.addCommand(
  new Command('serve')
    .description('run a Dispatch replica (embedded PostgreSQL unless DISPATCH_DATABASE_URL is set)')
    .option('--config <path>', 'YAML config file [env DISPATCH_CONFIG]')
    .action(async () => void (await import('./main.js'))),
);
root.addCommand(
  new Command('migrate')
    .description('apply pending migrations and exit')
    .option('--config <path>', 'YAML config file [env DISPATCH_CONFIG]')
    .action(async () => void (await import('./db/migrate-cli.js'))),
);

try {
  await root.parseAsync();
} catch (error) {
  console.error(`dispatch: ${error instanceof Error ? error.message : String(error)}`);
  if (error instanceof DispatchApiError) {
    for (const detail of error.details) console.error(`  ${detail.field}: ${detail.message}`);
  }
  process.exitCode = 1;
}
