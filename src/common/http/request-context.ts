import type { Request } from 'express';

/** Where a request came from, for sessions and the audit log. */
export interface RequestContext {
  ip: string | null;
  userAgent: string | null;
}

export function requestContext(req: Request): RequestContext {
  const userAgent = req.header('user-agent');
  return { ip: req.ip ?? null, userAgent: userAgent ? userAgent.slice(0, 256) : null };
}
