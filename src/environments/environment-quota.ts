import { Injectable } from '@nestjs/common';
import { AppError, FieldError } from '../common/errors/app-error.js';
import { CommonError } from '../common/errors/error-code.js';
import type { TemplateResources } from '../templates/template.js';
import { cpuMillicores, quantityBytes } from '../templates/template-rules.js';
import { PLANS, type Plan, type PlanName } from '../users/plans.js';
import { UsersRepository } from '../users/users.repository.js';
import type { ResourcesDto } from './dto/environment.dto.js';
import { EnvironmentError } from './environments.errors.js';
import { EnvironmentsRepository } from './environments.repository.js';

/**
 * The plan's side of environments: how many a user may have (one slot per live environment, taken
 * with a single conditional `$inc`, so replicas never overshoot), and which resources they may ask
 * for (each at most the plan's maximum; omitted ones take the plan's default).
 */
@Injectable()
export class EnvironmentQuota {
  constructor(
    private readonly environments: EnvironmentsRepository,
    private readonly users: UsersRepository,
  ) {}

  planOf(name: PlanName): Plan {
    return PLANS[name];
  }

  /** The plan of an environment's owner (for idle timeouts); null when the owner is gone. */
  async ownerPlan(userId: string): Promise<Plan | null> {
    const user = await this.users.findById(userId);
    return user ? PLANS[user.plan] : null;
  }

  /** Takes one of the user's slots; 403 `plan_limit_reached` (naming the plan and its limit) when all are taken. */
  async reserveSlot(userId: string, plan: Plan): Promise<void> {
    if (await this.environments.reserveSlot(userId, plan.maxEnvironments)) return;
    throw new AppError(
      EnvironmentError.PlanLimitReached,
      `Your ${plan.displayName} plan allows ${plan.maxEnvironments} environment${plan.maxEnvironments === 1 ? '' : 's'}; delete one or upgrade your plan`,
      { extra: { limit: plan.maxEnvironments, plan: plan.name } },
    );
  }

  /** Gives a slot back (creation failed, or the environment is terminated). */
  releaseSlot(userId: string): Promise<void> {
    return this.environments.releaseSlot(userId);
  }

  /**
   * The resources of a new environment: the requested ones, each at most the plan's maximum, the
   * plan's defaults for the others. 422 naming `<field>.<key>` for an invalid or excessive quantity.
   */
  resolve(requested: ResourcesDto | null, plan: Plan, field: string): TemplateResources {
    const errors: FieldError[] = [];
    const pick = (key: keyof TemplateResources, measure: (q: string) => number | null): string => {
      const max = plan.maxResources[key];
      const fallback = plan.defaultResources[key];
      const wanted = requested?.[key] ?? null;
      if (wanted === null) return fallback;
      const amount = measure(wanted);
      if (amount === null) {
        errors.push({ field: `${field}.${key}`, message: `${field}.${key} is not a valid quantity`, code: 'quantity' });
      } else if (amount > (measure(max) ?? 0)) {
        errors.push({
          field: `${field}.${key}`,
          message: `${field}.${key} ${wanted} exceeds your ${plan.displayName} plan's maximum of ${max}`,
          code: 'plan_limit',
        });
      }
      return wanted;
    };
    const resources = { cpu: pick('cpu', cpuMillicores), memory: pick('memory', quantityBytes), storage: pick('storage', quantityBytes) };
    if (errors.length > 0) throw new AppError(CommonError.ValidationFailed, errors.map((e) => e.message).join('; '), { errors });
    return resources;
  }

  /** New resources of an existing environment: the requested ones over its current ones, checked against the plan. */
  resolveChange(current: TemplateResources, requested: ResourcesDto, plan: Plan, field: string): TemplateResources {
    return this.resolve({ ...current, ...stripNulls(requested) }, plan, field);
  }
}

function stripNulls(resources: ResourcesDto): Partial<TemplateResources> {
  const result: Partial<TemplateResources> = {};
  if (resources.cpu) result.cpu = resources.cpu;
  if (resources.memory) result.memory = resources.memory;
  if (resources.storage) result.storage = resources.storage;
  return result;
}
