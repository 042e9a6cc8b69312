/** The objects the console reads (docs/auth.md, docs/environments.md, docs/templates.md). */

export interface User {
  id: string;
  username: string;
  email: string;
  full_name?: string | null;
  subscription_plan: string;
  role?: string;
  is_verified: boolean;
}

export interface SignInAnswer {
  access_token: string;
  refresh_token: string;
  token_type: string;
  /** Seconds until the access token expires. */
  expires_in: number;
  user: User;
}

export type EnvironmentStatus = 'creating' | 'running' | 'stopped' | 'terminated' | 'error';

export interface Environment {
  id: string;
  name: string;
  template: string;
  status: EnvironmentStatus;
  phase: string;
  status_message: string | null;
  queued_action: 'start' | 'stop' | null;
  installation_completed: boolean;
  installation_progress: number | null;
  resources: { cpu: string; memory: string; storage: string };
  created_at: string;
  updated_at: string;
  last_accessed: string | null;
  /** Web previews of the declared ports (docs/previews.md); absent from older servers. */
  previews?: Preview[];
}

export interface Preview {
  port: number;
  name: string | null;
  url: string;
  /** `url` with a short-lived grant (minutes): opens the preview in a new tab without any token. */
  open_url: string;
}

export interface Template {
  id: string;
  name: string;
  display_name: string;
  description: string;
  status: 'active' | 'deprecated' | 'beta';
}
