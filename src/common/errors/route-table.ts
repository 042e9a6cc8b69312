import { METHODS } from 'node:http';
import type { Request } from 'express';
import { CommonError } from './error-code.js';
import type { Normalised } from './http-exception.filter.js';

/** One route of the Express router: the patterns it matches and the methods it serves. */
interface Route {
  matchers: ((path: string) => unknown)[];
  methods: string[];
}

/** The parts of Express 5's router (the `router` package) the table reads. */
interface RouterLayer {
  matchers?: unknown;
  route?: { methods?: unknown };
}

const METHOD_ORDER = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'];

function byConventionalOrder(a: string, b: string): number {
  const rank = (method: string): number => (METHOD_ORDER.includes(method) ? METHOD_ORDER.indexOf(method) : METHOD_ORDER.length);
  return rank(a) - rank(b) || a.localeCompare(b);
}

export function requestPath(request: Request): string {
  return request.originalUrl.split('?')[0] ?? '/';
}

/**
 * Which methods each path is served with, read from the Express router once every route is
 * registered (after `app.init()`). A request that no route handled is then a 405 when its path
 * matches a route with other methods, and a 404 when it matches none.
 *
 * Routes registered with `all()` (every method: the router's `_all`, or Express's `app.all()`,
 * which adds each of Node's METHODS) are not counted: in this application those are Nest's
 * middleware and not-found handlers, and a real `all()` route would serve every method anyway. OPTIONS is never answered 405 (CORS preflights are answered before
 * routing when CORS is enabled; otherwise it stays a 404, as Express leaves it).
 */
export class RouteTable {
  private routes: Route[] = [];

  /** Reads the routes of an Express 5 application (`app.getHttpAdapter().getInstance()`). */
  load(expressApp: unknown): void {
    const stack = (expressApp as { router?: { stack?: unknown } } | null)?.router?.stack;
    if (!Array.isArray(stack)) throw new Error('RouteTable: the Express application has no router stack (is this Express 5?)');
    this.routes = [];
    for (const layer of stack as RouterLayer[]) {
      if (!layer.route) continue;
      if (!Array.isArray(layer.matchers) || typeof layer.route.methods !== 'object' || layer.route.methods === null) {
        throw new Error('RouteTable: unexpected shape of an Express route layer (matchers, route.methods)');
      }
      const served = layer.route.methods as Record<string, unknown>;
      const catchAll = served._all === true || METHODS.every((method) => served[method.toLowerCase()] === true);
      const methods = Object.keys(served)
        .filter((method) => served[method] === true && method !== '_all')
        .map((method) => method.toUpperCase());
      if (!catchAll && methods.length > 0) this.routes.push({ matchers: layer.matchers as Route['matchers'], methods });
    }
  }

  /** The methods served at this path (HEAD wherever GET is), in conventional order; empty when no route matches it. */
  allowedMethods(path: string): string[] {
    const methods = new Set<string>();
    for (const route of this.routes) {
      if (route.matchers.some((match) => match(path) !== false)) for (const method of route.methods) methods.add(method);
    }
    if (methods.has('GET')) methods.add('HEAD');
    return [...methods].sort(byConventionalOrder);
  }

  /** The error for a request no route handled: 405 with `Allow` when the path is served with other methods, else 404. */
  miss(request: Request): Normalised {
    const path = requestPath(request);
    const allowed = request.method === 'OPTIONS' ? [] : this.allowedMethods(path);
    if (allowed.length === 0 || allowed.includes(request.method)) {
      return { status: 404, code: CommonError.NotFound.code, detail: `No route matches ${request.method} ${path}` };
    }
    return {
      status: 405,
      code: CommonError.MethodNotAllowed.code,
      detail: `${request.method} is not allowed on ${path}; allowed: ${allowed.join(', ')}`,
      headers: { Allow: allowed.join(', ') },
    };
  }
}
