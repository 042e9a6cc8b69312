/**
 * An environment template as the rest of the application sees it (loaded from templates/*.yaml,
 * stored in MongoDB). The first group of fields is the mobile client's Template; the second is
 * what runtimes need to build and run an environment.
 */
export const TEMPLATE_CATEGORIES = ['programming_language', 'framework', 'database', 'devops', 'operating_system'] as const;
export type TemplateCategory = (typeof TEMPLATE_CATEGORIES)[number];

export const TEMPLATE_STATUSES = ['active', 'deprecated', 'beta'] as const;
export type TemplateStatus = (typeof TEMPLATE_STATUSES)[number];

export interface TemplatePort {
  name: string;
  port: number;
  protocol: 'TCP' | 'UDP';
}

export interface TemplateResources {
  cpu: string;
  memory: string;
  storage: string;
}

export interface Template {
  id: string;
  name: string;
  displayName: string;
  description: string;
  category: TemplateCategory;
  tags: string[];
  status: TemplateStatus;
  /** Semantic version of the template file, e.g. "1.2.0". */
  version: string;
  defaultPort: number | null;
  documentationUrl: string | null;
  iconUrl: string | null;
  usageCount: number;
  createdAt: Date;
  updatedAt: Date;
  /** Soft-deleted by an admin: hidden everywhere, kept for environments created from it. */
  deletedAt: Date | null;

  /** Container image (Kubernetes runtime). */
  image: string;
  /** The user the shell runs as, its uid/gid and home inside the container. */
  user: { name: string; uid: number; gid: number; home: string };
  /** Login shell, e.g. /bin/bash. */
  shell: string;
  /** Directory the shell starts in, relative to the home directory ('' = home). */
  workingDirectory: string;
  ports: TemplatePort[];
  /** Environment variables every environment of this template gets (users may add their own). */
  environmentVariables: Record<string, string>;
  startup: {
    /** Run as root inside a container only (package installs): never on the local runtime's host. */
    system: string[];
    /** Run as the environment's user in its home once per provision (virtualenvs, language tools, dotfiles). */
    user: string[];
  };
  /** Commands the shell needs; the local runtime reports the missing ones instead of installing them. */
  requiredCommands: string[];
  defaultResources: TemplateResources;
  /** True when the image can run as a non-root user (Kubernetes runAsNonRoot). */
  runAsNonRoot: boolean;
}

/** What the client's Template.startup_commands shows: every step, system ones first. */
export function startupCommands(template: Pick<Template, 'startup'>): string[] {
  return [...template.startup.system, ...template.startup.user];
}
