import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * The folders of src/, lowest first. A folder may import itself and the folders before it, never
 * one after it, so no two folders can depend on each other (nor any longer cycle form). The
 * files directly in src/ (main, app, routes) wire everything and may import any folder.
 */
const LAYERS = [
  'observability',
  'config',
  'domain',
  'db',
  'background',
  'integrations',
  'jobs',
  'http',
  'auth',
  'tasks',
  'scopes',
  'schedules',
  'assignment',
  'lifecycle',
  'agents',
  'events',
  // The operators' dashboard: a presentation layer over every domain, like http/ (it may import it).
  'ui',
  'client',
  'cli',
];
/** The wiring in src/ itself, which no folder imports back. */
const ROOT_MODULES = ['**/main.js', '**/app.js', '**/routes.js', '**/cli.js'];
/**
 * Domain folders: their logic never imports the HTTP layer; only their `*.routes.ts` do, and the
 * `*.openapi.ts` beside them that declare those routes for openapi.json.
 */
const DOMAINS = LAYERS.slice(LAYERS.indexOf('http') + 1, LAYERS.indexOf('events') + 1);
/** The server's folders: the client (shipped apart, for agents) takes only types from them. */
const SERVER = LAYERS.slice(0, LAYERS.indexOf('client'));

function importBoundaries(folder, { routes }) {
  const later = LAYERS.slice(LAYERS.indexOf(folder) + 1);
  const patterns = [
    { group: [...later.map((f) => `**/${f}/*`), ...ROOT_MODULES], message: `src/${folder}/ may import only folders listed before it in LAYERS (eslint.config.js).` },
  ];
  if (DOMAINS.includes(folder) && !routes) {
    patterns.push({ group: ['**/http/*'], message: 'Domain code does not import the HTTP layer; only *.routes.ts files do.' });
  }
  return { 'no-restricted-imports': ['error', { patterns }] };
}

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '.dispatch/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'error',
    },
  },
  ...LAYERS.map((folder) => ({ files: [`src/${folder}/**/*.{ts,tsx}`], rules: importBoundaries(folder, { routes: false }) })),
  ...DOMAINS.map((folder) => ({
    files: [`src/${folder}/**/*.routes.ts`, `src/${folder}/**/*.openapi.ts`],
    rules: importBoundaries(folder, { routes: true }),
  })),
  {
    files: ['src/client/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: SERVER.map((f) => `**/${f}/*`), allowTypeImports: true, message: 'The client takes only types from the server (import type).' },
            { group: ['node:*'], message: 'The client runs wherever fetch does: no Node modules.' },
          ],
        },
      ],
    },
  },
  { files: ['src/cli/**/*.ts', 'examples/**'], rules: { 'no-console': 'off' } },
  { files: ['bench/**', 'test/**', 'scripts/**', 'db/dump-schema.ts', 'src/main.ts', 'src/cli.ts', 'src/db/migrate-cli.ts'], rules: { 'no-console': 'off' } },
  // Tests read JSON response bodies whose shape is what they assert.
  { files: ['test/**', 'bench/**'], rules: { '@typescript-eslint/no-explicit-any': 'off' } },
);
