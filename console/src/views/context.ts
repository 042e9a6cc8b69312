import type { ApiClient } from '../api/client.js';
import type { Session } from '../auth/session.js';
import type { EnvironmentsSource } from '../environments/source.js';
import type { Router } from '../router.js';

/** What every view gets. */
export interface AppContext {
  session: Session;
  api: ApiClient;
  environments: EnvironmentsSource;
  router: Router;
  /** A notice for the next view that renders (e.g. why the person was signed out). */
  flash: string | null;
}

/** Renders into `root`; returns what to do when the view goes away. */
export type Dispose = () => void;
