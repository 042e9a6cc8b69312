import { INestApplication, RequestMethod } from '@nestjs/common';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { DocumentBuilder, OpenAPIObject, ReferenceObject, SchemaObject, SwaggerModule } from '@nestjs/swagger';
import express from 'express';
import helmet from 'helmet';
import { Logger } from 'nestjs-pino';
import { ErrorBodyDto, FieldErrorDto } from './common/errors/error-body.dto.js';
import { HttpExceptionFilter, routeMissFallback } from './common/errors/http-exception.filter.js';
import { RouteTable } from './common/errors/route-table.js';
import { createValidationPipe } from './common/errors/validation.js';
import { requestIdMiddleware } from './common/logging/request-id.js';
import { UpgradeRateLimit } from './common/rate-limit/upgrade-rate-limit.js';
import { RoutingWsAdapter } from './common/websocket/routing-ws-adapter.js';
import type { Configuration } from './config/configuration.js';
import { PreviewProxy } from './previews/preview-proxy.js';
import { mountWebConsole } from './web-console/web-console.js';

export const API_PREFIX = 'api/v1';
export const JSON_BODY_LIMIT = '1mb';

/** Options for NestFactory.create / createNestApplication: we install the body parser ourselves. */
export const NEST_APPLICATION_OPTIONS = { bodyParser: false, bufferLogs: true } as const;

/** Adds the shared error body as the `default` response of every operation that lacks one. */
function documentErrors(document: OpenAPIObject): OpenAPIObject {
  for (const path of Object.values(document.paths)) {
    for (const operation of [path.get, path.put, path.post, path.delete, path.patch]) {
      if (!operation || operation.responses.default) continue;
      operation.responses.default = {
        description: 'Error: `detail` explains it; `code` is stable (see docs/api.md)',
        content: { 'application/json': { schema: { $ref: '#/components/schemas/ErrorBodyDto' } } },
      };
    }
  }
  return document;
}

/**
 * The global ValidationPipe refuses unknown fields (`forbidNonWhitelisted`), so every object
 * schema a request body uses, nested ones included, says `additionalProperties: false`, unless it
 * says otherwise itself (the resource objects accept and ignore unknown keys).
 */
function closeRequestSchemas(document: OpenAPIObject): OpenAPIObject {
  const components = document.components?.schemas ?? {};
  const visited = new Set<string>();
  const visit = (schema: SchemaObject | ReferenceObject | undefined): void => {
    if (!schema) return;
    if ('$ref' in schema) {
      const name = schema.$ref.replace('#/components/schemas/', '');
      if (visited.has(name)) return;
      visited.add(name);
      visit(components[name]);
      return;
    }
    if (schema.type === 'object' && schema.properties && schema.additionalProperties === undefined) schema.additionalProperties = false;
    const nested = [
      ...Object.values(schema.properties ?? {}),
      schema.items,
      ...(schema.allOf ?? []),
      ...(schema.anyOf ?? []),
      ...(schema.oneOf ?? []),
    ];
    if (typeof schema.additionalProperties === 'object') nested.push(schema.additionalProperties);
    for (const child of nested) visit(child);
  };
  for (const path of Object.values(document.paths)) {
    for (const operation of [path.put, path.post, path.patch]) {
      const body = operation?.requestBody;
      if (!body || '$ref' in body) continue;
      for (const media of Object.values(body.content)) visit(media.schema);
    }
  }
  return document;
}

/** The OpenAPI document of the application's controllers, as /docs-json serves it. */
export function createOpenApiDocument(app: INestApplication): OpenAPIObject {
  const config = new DocumentBuilder()
    .setTitle('DevPocket Server')
    .setDescription('REST API of DevPocket, the mobile-first cloud IDE. WebSocket protocol: see docs/.')
    .setVersion('1')
    .addBearerAuth({ type: 'http', scheme: 'bearer', bearerFormat: 'JWT' })
    .build();
  const document = SwaggerModule.createDocument(app, config, { extraModels: [ErrorBodyDto, FieldErrorDto] });
  return closeRequestSchemas(documentErrors(document));
}

function setupSwagger(app: INestApplication): void {
  SwaggerModule.setup('docs', app, createOpenApiDocument(app), {
    jsonDocumentUrl: 'docs-json',
    customSiteTitle: 'DevPocket Server API',
  });
}

/**
 * Everything between "a Nest application exists" and "it may listen": shared by main.ts and the
 * end-to-end tests so that tests exercise exactly what production runs. Initialises the app.
 */
export async function configureApp(app: NestExpressApplication, configuration: Configuration): Promise<void> {
  const { http, app: appConfig } = configuration;
  app.useLogger(app.get(Logger));
  app.set('trust proxy', http.trustedProxies.length > 0 ? http.trustedProxies : false);
  app.set('strict routing', false);
  app.use(requestIdMiddleware);
  // Web previews (docs/previews.md) are the environments' own pages: none of the API's headers or body parsing.
  const previews = app.get(PreviewProxy, { strict: false });
  app.use(previews.handle);
  app.use(
    helmet({
      contentSecurityPolicy: {
        directives: { 'img-src': ["'self'", 'data:'], 'style-src': ["'self'", "'unsafe-inline'"], 'script-src': ["'self'"] },
      },
    }),
  );
  if (http.corsOrigins.length > 0) {
    app.enableCors({
      origin: http.corsOrigins.includes('*') ? true : http.corsOrigins,
      exposedHeaders: ['X-Request-Id', 'Retry-After'],
      maxAge: 600,
    });
  }
  app.use(express.json({ limit: JSON_BODY_LIMIT }));
  app.setGlobalPrefix(API_PREFIX, {
    exclude: [
      { path: 'health', method: RequestMethod.ALL },
      { path: 'health/{*rest}', method: RequestMethod.ALL },
      { path: 'metrics', method: RequestMethod.ALL },
    ],
  });
  app.useGlobalPipes(createValidationPipe());
  const routes = new RouteTable();
  app.useGlobalFilters(new HttpExceptionFilter(routes));
  app.enableShutdownHooks([], { useProcessExit: true });
  // The gateways (terminal, logs) on the HTTP server, routed by path pattern, each upgrade counted
  // against the client's rate limit like an HTTP request; set before init().
  const upgrades = app.get(UpgradeRateLimit, { strict: false });
  app.useWebSocketAdapter(new RoutingWsAdapter(app, { admitUpgrade: (request) => upgrades.admit(request), passThrough: previews }));
  if (appConfig.swaggerEnabled) setupSwagger(app);
  await app.init();
  // The browser console at `/` (docs/console.md): its pages are routes too, so mount it before the table is read.
  const webConsole = mountWebConsole(app);
  // Every route is registered now: a request none of them handles is a 405 (its path is served
  // with other methods, listed in `Allow`) or a 404.
  routes.load(app.getHttpAdapter().getInstance());
  app.use(webConsole.pageNotFound);
  app.use(routeMissFallback(routes));
}
