/**
 * Subscription plans: the one place where quotas are defined. CPU in cores (Kubernetes quantity
 * strings), memory and storage as Kubernetes quantities (Gi).
 */
export const PLAN_NAMES = ['free', 'starter', 'pro', 'team'] as const;
export type PlanName = (typeof PLAN_NAMES)[number];

export interface ResourceAllowance {
  cpu: string;
  memory: string;
  storage: string;
}

export interface Plan {
  name: PlanName;
  displayName: string;
  maxEnvironments: number;
  defaultResources: ResourceAllowance;
  maxResources: ResourceAllowance;
  idleTimeoutMinutes: number;
}

export const PLANS: Readonly<Record<PlanName, Plan>> = {
  free: {
    name: 'free',
    displayName: 'Free',
    maxEnvironments: 1,
    defaultResources: { cpu: '500m', memory: '1Gi', storage: '5Gi' },
    maxResources: { cpu: '500m', memory: '1Gi', storage: '5Gi' },
    idleTimeoutMinutes: 30,
  },
  starter: {
    name: 'starter',
    displayName: 'Starter',
    maxEnvironments: 3,
    defaultResources: { cpu: '500m', memory: '1Gi', storage: '5Gi' },
    maxResources: { cpu: '1', memory: '2Gi', storage: '10Gi' },
    idleTimeoutMinutes: 60,
  },
  pro: {
    name: 'pro',
    displayName: 'Pro',
    maxEnvironments: 10,
    defaultResources: { cpu: '1', memory: '2Gi', storage: '10Gi' },
    maxResources: { cpu: '2', memory: '4Gi', storage: '20Gi' },
    idleTimeoutMinutes: 120,
  },
  team: {
    name: 'team',
    displayName: 'Team',
    maxEnvironments: 25,
    defaultResources: { cpu: '1', memory: '2Gi', storage: '10Gi' },
    maxResources: { cpu: '4', memory: '8Gi', storage: '50Gi' },
    idleTimeoutMinutes: 240,
  },
};

export function isPlanName(value: unknown): value is PlanName {
  return typeof value === 'string' && (PLAN_NAMES as readonly string[]).includes(value);
}
