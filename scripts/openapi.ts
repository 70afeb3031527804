/**
 * `npm run openapi` writes openapi.json (the API's OpenAPI document, generated from the routes'
 * declarations) at the repository root; `npm run openapi:check` exits 1 when the committed file
 * differs from what the code generates (.ci/check-generated.sh runs it).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { openApiJson } from '../src/routes.js';

const target = fileURLToPath(new URL('../openapi.json', import.meta.url));
const generated = openApiJson();
if (process.argv.includes('--check')) {
  const committed = await readFile(target, 'utf8').catch(() => '');
  if (committed !== generated) {
    console.error('openapi.json is not what the code generates: run `npm run openapi` and commit the result');
    process.exit(1);
  }
  console.log('openapi.json is up to date');
} else {
  await writeFile(target, generated);
  console.log(`wrote ${target}`);
}
