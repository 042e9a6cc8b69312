import { type ConfigFactoryKeyHost, type ConfigObject, registerAs } from '@nestjs/config';
import type { EnvironmentSchema } from '../environment.schema.js';

/**
 * One concern of the configuration as an @nestjs/config namespace (`registerAs(name, …)`):
 * providers inject it with `@Inject(httpConfig.KEY) private readonly http: ConfigType<typeof httpConfig>`.
 *
 * Its values are never read from `process.env` by the namespace itself: `build` computes them from
 * the validated environment (`loadConfiguration`), and `configModule(configuration)` loads, per
 * application, a factory under the same key that returns them. So the namespace's own factory is
 * never called; it throws if something loads it the stock way (`ConfigModule.forRoot({ load: [httpConfig] })`).
 */
export type ConfigNamespace<N extends string, T extends ConfigObject> = (() => T) &
  ConfigFactoryKeyHost<T> & {
    /** The namespace's name: its key in `Configuration` and the first segment of ConfigService paths (`http.rateLimitMax`). */
    readonly NAMESPACE: N;
    /** Its values from the validated environment, with the defaults applied; relative paths resolve from `cwd`. */
    readonly build: (env: EnvironmentSchema, cwd: string) => T;
  };

export function defineNamespace<const N extends string, T extends ConfigObject>(
  name: N,
  build: (env: EnvironmentSchema, cwd: string) => T,
): ConfigNamespace<N, T> {
  const namespace = registerAs(name, (): T => {
    throw new Error(`The ${name} configuration is loaded per application by configModule(configuration), not from process.env`);
  });
  return Object.assign(namespace, { NAMESPACE: name, build });
}

/** A comma-separated list, blanks around items dropped. */
export const list = (value: string | undefined): string[] =>
  (value ?? '')
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item.length > 0);
