import { randomBytes } from 'node:crypto';
import { Logger } from '@nestjs/common';
import type { RuntimeConfig } from '../config/namespaces/runtime.config.js';
import type { SettingsRepository } from './settings.repository.js';

/**
 * An installation id: a valid Kubernetes label value (at most 63 of [A-Za-z0-9-_.], starting and
 * ending alphanumeric), because the Kubernetes runtime labels every object it creates with it.
 */
export const INSTALLATION_ID_PATTERN = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;

/** A new random installation id: 16 lower-case hex characters. */
export function newInstallationId(): string {
  return randomBytes(8).toString('hex');
}

/**
 * Which installation of DevPocket this server belongs to. Several installations may share one
 * Kubernetes cluster (even one namespace); each labels the objects it creates with its id
 * (`devpocket.io/installation`) and only ever lists, watches, adopts or cleans up its own. Every
 * replica of one installation has the same id: INSTALLATION_ID when configured, otherwise the id
 * stored in the database (`settings`), chosen at random by the first server that booted on it.
 */
export class Installation {
  constructor(
    readonly id: string,
    /** Where the id came from. */
    readonly source: 'configuration' | 'database',
  ) {}
}

/** INSTALLATION_ID, else the database's id (created atomically at the first boot). */
export async function resolveInstallation(config: RuntimeConfig, settings: SettingsRepository): Promise<Installation> {
  const installation = config.installationId
    ? new Installation(config.installationId, 'configuration')
    : new Installation(await settings.installationId(newInstallationId()), 'database');
  new Logger('Installation').log(
    `Installation id ${installation.id} (${installation.source === 'configuration' ? 'INSTALLATION_ID' : 'stored in the database'})`,
  );
  return installation;
}
