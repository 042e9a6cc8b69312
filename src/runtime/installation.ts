import { createHash } from 'node:crypto';
import type { EnvironmentSpec } from './runtime.provider.js';

/**
 * How every runtime words the state of an environment's startup script in `status.message`, so
 * clients see the same text whichever runtime runs the environment.
 */

export interface InstallationNotes {
  stepsDone: number;
  stepsTotal: number;
  /** 1-based numbers of the user-level steps that failed. */
  failedSteps: number[];
  /** The script was stopped before its end. */
  interrupted: boolean;
  /** Required commands not found in the environment. */
  missingCommands: string[];
}

/** "step 2" or "steps 2, 5". */
export function describeSteps(numbers: number[]): string {
  return numbers.length === 1 ? `step ${numbers[0]}` : `steps ${numbers.join(', ')}`;
}

/** The notes that make up `status.message` (joined with "; "), in a fixed order. */
export function installationNotes(notes: InstallationNotes): string[] {
  const lines: string[] = [];
  if (notes.missingCommands.length > 0) lines.push(`missing commands: ${notes.missingCommands.join(', ')}`);
  if (notes.failedSteps.length > 0) lines.push(`startup ${describeSteps(notes.failedSteps)} of ${notes.stepsTotal} failed`);
  if (notes.interrupted) lines.push(`startup script interrupted after ${notes.stepsDone} of ${notes.stepsTotal} step(s)`);
  return lines;
}

/** Hash of what a provision installs (template, version, startup steps): every runtime compares it with the progress it recorded. */
export function specHash(spec: EnvironmentSpec): string {
  const { template } = spec;
  const subject = {
    template: template.id,
    version: template.version,
    system: template.startup.system,
    user: template.startup.user,
  };
  return createHash('sha256').update(JSON.stringify(subject)).digest('hex');
}
