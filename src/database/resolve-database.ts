import { join } from 'node:path';
import type { Configuration } from '../config/configuration.js';
import { launchDatabase, LaunchedDatabase } from './launcher/database-launcher.js';

/**
 * Outside production without MONGODB_URI, starts (or joins) the embedded database with its data
 * under DATA_DIR/db and returns the configuration pointing at it. Production never gets here
 * without MONGODB_URI: configuration validation refuses it.
 */
export async function resolveDatabase(
  configuration: Configuration,
  log: (message: string) => void,
): Promise<{ configuration: Configuration; embedded: LaunchedDatabase | null }> {
  if (configuration.database.uri !== null) return { configuration, embedded: null };
  const embedded = await launchDatabase({ dataDir: join(configuration.app.dataDir, 'db'), log });
  return { configuration: { ...configuration, database: { ...configuration.database, uri: embedded.uri } }, embedded };
}
