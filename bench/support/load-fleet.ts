import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { call, createEnvironment, pool, register, waitForPhase, type User } from './api-client.js';
import { setTeamPlan } from './server.js';

import { arrival, quiet, WsTerminal } from './terminals.js';

/**
 * The load bench's environments on the local runtime: Team-plan users (25 environments each), the
 * environments, an output producer started in each through its terminal, and clean-up that leaves
 * no tmux server behind.
 */

const ENVIRONMENTS_PER_USER = 25; // the Team plan

const log = (message: string): void => void process.stderr.write(`[bench] load: ${message}\n`);

export interface Fleet {
  users: User[];
  /** Environment ids, each with its owner. */
  ids: string[];
  ownerOf: Map<string, User>;
}

/** Registers users, puts them on the Team plan and creates `count` environments, all running. */
export async function createFleet(
  baseUrl: string,
  db: { mongodbUri: string; name: string; dataDir: string },
  count: number,
  prefix: string,
): Promise<Fleet> {
  const users: User[] = [];
  for (let i = 0; i < Math.ceil(count / ENVIRONMENTS_PER_USER); i += 1)
    users.push(await register(baseUrl, `${prefix}u${i}`, `10.78.${i}.1`));
  await pool(users, 4, (user) => setTeamPlan(db.mongodbUri, db.name, db.dataDir, user.name));
  const slots = Array.from({ length: count }, (_, i) => users[Math.floor(i / ENVIRONMENTS_PER_USER)]);
  const ids = await pool(slots, 8, (user, i) => createEnvironment(baseUrl, user, `Load ${i}`));
  const ownerOf = new Map(ids.map((id, i) => [id, slots[i]]));
  await waitForPhase(baseUrl, byOwner(ids, ownerOf), 'running', 600_000);
  return { users, ids, ownerOf };
}

function byOwner(ids: string[], ownerOf: Map<string, User>): Map<User, string[]> {
  const owners = new Map<User, string[]>();
  for (const id of ids) owners.set(ownerOf.get(id)!, [...(owners.get(ownerOf.get(id)!) ?? []), id]);
  return owners;
}

/**
 * The producer typed at each environment's shell: `bytesPerSecond` of text in 80-byte numbered
 * lines, 20 bursts a second on a fixed schedule (no catching up by more than a second when the
 * terminal held it back), while the file `flag` exists (ProducerSwitch); it announces itself with
 * one line, PRODUCER_READY. A burst stays shorter than the screen (30 rows): tmux renders the
 * screen, so lines that scroll off within one burst would never be sent. Perl ships with every
 * Debian; a shell loop would fork a `sleep` 20 times a second in each of 200 environments.
 */
export function producerCommand(bytesPerSecond: number, flag: string): string {
  if (!/^[\w/.-]+$/.test(flag)) throw new Error(`unexpected flag path ${flag}`);
  const lines = Math.max(1, Math.round(bytesPerSecond / 20 / 80));
  const script = [
    `$|=1;$f="${flag}";$p=join("",map{chr(97+$_%26)}0..69);$n=0;print join("_","PRODUCER","READY"),"\\n";$t=time;`,
    `while(1){if(-e $f){$o="";$o.=sprintf("%08d %s\\n",++$n,$p) for 1..${lines};print $o}`,
    '$t+=0.05;$d=$t-time;$t=time if $d<-1;sleep($d) if $d>0}',
  ].join('');
  return `perl -MTime::HiRes=time,sleep -e '${script}'\r`;
}

/** Files whose presence lets the producers print: the producers of the light phase have their own. */
export class ProducerSwitch {
  readonly light: string;
  readonly rest: string;

  constructor(dir: string) {
    this.light = join(dir, 'produce-light');
    this.rest = join(dir, 'produce-rest');
  }

  set(flags: { light: boolean; rest: boolean }): void {
    for (const [path, on] of [
      [this.light, flags.light],
      [this.rest, flags.rest],
    ] as const) {
      if (on) writeFileSync(path, '');
      else rmSync(path, { force: true });
    }
  }
}

/**
 * Types the producer at each environment's shell (through its terminal, then disconnects); a
 * terminal that does not open on a saturated machine is tried again. Returns how many run.
 */
export async function startProducers(baseUrl: string, fleet: Fleet, ids: string[], bytesPerSecond: number, flag: string): Promise<number> {
  const started = await pool(ids, 5, async (id) => {
    for (let attempt = 1; attempt <= 3; attempt += 1) {
      try {
        return await startProducer(baseUrl, fleet.ownerOf.get(id)!.token, id, producerCommand(bytesPerSecond, flag));
      } catch (error) {
        log(`the producer of ${id}, attempt ${attempt}: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    return false;
  });
  return started.filter(Boolean).length;
}

async function startProducer(baseUrl: string, token: string, id: string, command: string): Promise<boolean> {
  const terminal = await WsTerminal.connect(baseUrl, id, token);
  try {
    await quiet(terminal, 300, 5000);
    const ready = arrival(terminal, 'PRODUCER_READY', 10_000);
    terminal.write(command);
    if ((await ready) !== null) return true;
    log(`the producer of ${id} did not start within 10 s`);
    return false;
  } finally {
    await terminal.close();
  }
}

/** Deletes every environment of the fleet and waits until they are terminated (best effort). */
export async function deleteFleet(baseUrl: string, fleet: Fleet): Promise<void> {
  await pool(fleet.ids, 8, (id) =>
    call(baseUrl, fleet.ownerOf.get(id)!.ip, 'DELETE', `/api/v1/environments/${id}`, fleet.ownerOf.get(id)!.token).catch(() => undefined),
  );
  await waitForPhase(baseUrl, byOwner(fleet.ids, fleet.ownerOf), 'terminated', 300_000).catch((error: unknown) => log(String(error)));
}

/** Busy CPU of the whole machine, in cores, between two readings of /proc/stat. */
export function machineCpu(): () => number {
  const read = (): { busy: number; total: number } => {
    const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const total = fields.reduce((sum, value) => sum + value, 0);
    return { busy: total - fields[3] - fields[4], total };
  };
  const before = read();
  const started = performance.now();
  return () => {
    const after = read();
    return (after.busy - before.busy) / 100 / ((performance.now() - started) / 1000);
  };
}

/** Values of Prometheus series from a server's /metrics (summed over labels). */
export async function metrics(baseUrl: string, names: string[]): Promise<Record<string, number>> {
  const values: Record<string, number> = {};
  let text: string;
  try {
    text = await (await fetch(`${baseUrl}/metrics`)).text();
  } catch {
    // The server is gone (it crashed): NaN figures, reported as such, rather than ending the whole run.
    for (const name of names) values[name] = Number.NaN;
    return values;
  }
  for (const name of names) {
    let sum = 0;
    for (const match of text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'gm'))) sum += Number(match[1]);
    values[name] = sum;
  }
  return values;
}
