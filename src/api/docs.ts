// GET /api/docs: the API docs page, Swagger UI from the swagger-ui-dist package, served from
// node_modules (no CDN). The page and its start script are files of their own (no inline
// script), so it works under a same-origin Content-Security-Policy; it loads the document from
// /api/openapi.json. Paths are relative, so the page works behind a path prefix too.
import { createRequire } from 'node:module';
import path from 'node:path';
import { z } from 'zod';
import { errorBody } from './errors.ts';
import type { Route } from './route.ts';

const swaggerUiDir = path.dirname(
  createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'),
);

/** The files of swagger-ui-dist the page uses; nothing else of the package is served. */
const PACKAGE_FILES = [
  'swagger-ui.css',
  'swagger-ui-bundle.js',
  'favicon-32x32.png',
  'favicon-16x16.png',
] as const;

/** What `GET /api/docs/{asset}` serves. */
export const DOCS_ASSETS = ['start.js', ...PACKAGE_FILES] as const;

// Relative to /api/docs: `docs/x` is /api/docs/x, `openapi.json` is /api/openapi.json.
const PAGE = `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>Keelson API</title>
    <link rel="stylesheet" href="docs/swagger-ui.css" />
    <link rel="icon" type="image/png" href="docs/favicon-32x32.png" sizes="32x32" />
    <link rel="icon" type="image/png" href="docs/favicon-16x16.png" sizes="16x16" />
  </head>
  <body>
    <div id="swagger-ui"></div>
    <script src="docs/swagger-ui-bundle.js"></script>
    <script src="docs/start.js"></script>
  </body>
</html>
`;

// validatorUrl null: no request to an outside validator. Writes say JSON also without a body, as
// the API asks of them without authentication (site-guards.ts).
const START = `window.addEventListener('load', function () {
  window.ui = SwaggerUIBundle({
    url: new URL('openapi.json', document.baseURI).href,
    dom_id: '#swagger-ui',
    deepLinking: true,
    validatorUrl: null,
    defaultModelsExpandDepth: 0,
    docExpansion: 'list',
    requestInterceptor: function (req) {
      var method = (req.method || 'GET').toUpperCase();
      var said = Object.keys(req.headers || {}).some(function (h) {
        return h.toLowerCase() === 'content-type';
      });
      if (method !== 'GET' && method !== 'HEAD' && !said) {
        req.headers = req.headers || {};
        req.headers['Content-Type'] = 'application/json';
      }
      return req;
    },
  });
});
`;

export const docsRoutes: Route[] = [
  {
    method: 'get',
    path: '/api/docs',
    auth: 'open',
    trailingSlash: true,
    doc: {
      tag: 'Docs',
      operationId: 'getDocs',
      summary: 'The API docs page (Swagger UI, served locally)',
      database: false,
      responses: {
        200: {
          description: 'The page; it loads this document',
          content: { 'text/html': { schema: { type: 'string' } } },
        },
      },
    },
    handler: () => (req, res) => {
      // `/api/docs/` would resolve the page's relative paths one level too deep.
      if (req.path.endsWith('/')) {
        res.redirect(301, '../docs');
        return;
      }
      res.type('html').set('Cache-Control', 'no-cache').send(PAGE);
    },
  },
  {
    method: 'get',
    path: '/api/docs/:asset',
    auth: 'open',
    doc: {
      tag: 'Docs',
      operationId: 'getDocsAsset',
      summary: "The docs page's scripts, styles and icons",
      database: false,
      params: z.object({ asset: z.enum(DOCS_ASSETS) }),
      responses: { 200: { description: 'The file' } },
      errors: { 404: ['route_not_found'] },
    },
    handler: () => (req, res) => {
      const asset = String(req.params.asset);
      if (asset === 'start.js') {
        res.type('text/javascript').set('Cache-Control', 'no-cache').send(START);
        return;
      }
      if (!(PACKAGE_FILES as readonly string[]).includes(asset)) {
        res.status(404).json(errorBody('route_not_found', `No route ${req.method} ${req.path}`));
        return;
      }
      res.sendFile(asset, { root: swaggerUiDir, maxAge: '1h' });
    },
  },
];
