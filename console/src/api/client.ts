import { signedOutReason, type Session } from '../auth/session.js';
import { ApiError, requestJson } from './http.js';
import type { Environment, Template } from './types.js';

/**
 * Authenticated calls, as the mobile app makes them: on a 401, refresh once
 * (`POST /auth/refresh`) and retry; when the refresh is refused, the session signs out.
 */
export class ApiClient {
  constructor(private readonly session: Session) {}

  async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const token = await this.session.accessToken();
    try {
      return await requestJson<T>(method, path, { body, token });
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 401) throw error;
      const outcome = await this.session.refresh();
      if (outcome !== 'refreshed') throw error;
      try {
        return await requestJson<T>(method, path, { body, token: await this.session.accessToken() });
      } catch (retried) {
        if (retried instanceof ApiError && retried.status === 401) this.session.forget(signedOutReason(retried.detail));
        throw retried;
      }
    }
  }

  environments(): Promise<Environment[]> {
    return this.call<Environment[]>('GET', '/environments');
  }

  environment(id: string): Promise<Environment> {
    return this.call<Environment>('GET', `/environments/${encodeURIComponent(id)}`);
  }

  createEnvironment(name: string, template: string): Promise<Environment> {
    return this.call<Environment>('POST', '/environments', { name, template });
  }

  act(id: string, action: 'start' | 'stop' | 'restart'): Promise<Environment> {
    return this.call<Environment>('POST', `/environments/${encodeURIComponent(id)}/${action}`);
  }

  deleteEnvironment(id: string): Promise<Environment> {
    return this.call<Environment>('DELETE', `/environments/${encodeURIComponent(id)}`);
  }

  templates(): Promise<Template[]> {
    return this.call<Template[]>('GET', '/templates');
  }
}
