import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Hono } from 'hono';
import type { ApiEnv } from './context.js';

/**
 * GET /openapi.json and the page that browses it, GET /docs: Swagger UI from the swagger-ui-dist
 * package (static files, no dependency of its own at run time), served from node_modules, so the
 * page works offline and loads nothing from elsewhere. Both are public: the document describes
 * the API, it holds no data (docs/SECURITY.md).
 */

const SWAGGER_UI_DIR = dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));

/** The only files served under /docs/: a fixed list, so no path from the URL reaches the file system. */
const ASSETS = new Map([
  ['swagger-ui.css', 'text/css; charset=utf-8'],
  ['swagger-ui-bundle.js', 'text/javascript; charset=utf-8'],
  ['favicon-32x32.png', 'image/png'],
]);

// Our own script, not inline, so the page's CSP can forbid inline scripts. validatorUrl: null
// keeps Swagger UI from sending the document to its public validator service.
const INIT_SCRIPT = `window.addEventListener('load', function () {
  window.ui = SwaggerUIBundle({ url: '/openapi.json', dom_id: '#swagger-ui', deepLinking: true, validatorUrl: null, tryItOutEnabled: false });
});
`;

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Dispatch API</title>
<link rel="icon" type="image/png" href="/docs/favicon-32x32.png">
<link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script>
</body>
</html>
`;

/** Swagger UI styles some elements inline; scripts and every fetch stay on this origin. */
const PAGE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** `documentJson` is called on the first request: building the document (~0.1 s) stays out of startup. */
export function docsRoutes(documentJson: () => string) {
  const cache = new Map<string, Promise<Buffer>>();
  const asset = (file: string) => {
    let content = cache.get(file);
    if (!content) {
      content = readFile(join(SWAGGER_UI_DIR, file));
      // A failed read is not remembered: the next request tries again.
      content.catch(() => cache.delete(file));
      cache.set(file, content);
    }
    return content;
  };
  return new Hono<ApiEnv>()
    .get('/openapi.json', (c) => c.body(documentJson(), 200, { 'Content-Type': 'application/json' }))
    .get('/docs', (c) => c.html(PAGE, 200, { 'Content-Security-Policy': PAGE_CSP }))
    .get('/docs/init.js', (c) => c.body(INIT_SCRIPT, 200, { 'Content-Type': 'text/javascript; charset=utf-8' }))
    .get('/docs/:asset', async (c) => {
      const file = c.req.param('asset');
      const type = ASSETS.get(file);
      if (!type) return c.notFound();
      return c.body(new Uint8Array(await asset(file)), 200, { 'Content-Type': type, 'Cache-Control': 'public, max-age=86400' });
    });
}
