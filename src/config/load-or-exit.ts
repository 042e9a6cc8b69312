import { type Configuration, loadConfiguration } from './configuration.js';
import { ConfigurationError } from './validate-environment.js';

/** For entry points: the configuration, or exit 78 (EX_CONFIG) with one line per bad variable. */
export function loadOrExit(env: NodeJS.ProcessEnv = process.env): Configuration {
  try {
    return loadConfiguration(env);
  } catch (error) {
    if (!(error instanceof ConfigurationError)) throw error;
    process.stderr.write(`${error.message}\n`);
    process.exit(78);
  }
}
