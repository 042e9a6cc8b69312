/**
 * `npx tsx bench/support/heap-summary.ts <file.heapsnapshot> [top]`: where a V8 heap snapshot's
 * memory is, by node type and constructor (self sizes, so nothing is counted twice), largest first,
 * with the native backing stores of Buffers and ArrayBuffers apart (those are `external` memory).
 */
import { readFileSync } from 'node:fs';

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

const [file, topArg] = process.argv.slice(2);
if (!file) {
  process.stderr.write('usage: tsx bench/support/heap-summary.ts <file.heapsnapshot> [top]\n');
  process.exit(2);
}
const data = JSON.parse(readFileSync(file, 'utf8')) as Snapshot;
const fields = data.snapshot.meta.node_fields;
const types = data.snapshot.meta.node_types[0];
const width = fields.length;
const [typeAt, nameAt, sizeAt] = ['type', 'name', 'self_size'].map((field) => fields.indexOf(field));

const groups = new Map<string, { count: number; bytes: number }>();
let total = 0;
for (let i = 0; i < data.nodes.length; i += width) {
  const type = types[data.nodes[i + typeAt]];
  const name = data.strings[data.nodes[i + nameAt]];
  const size = data.nodes[i + sizeAt];
  total += size;
  // Strings and code are grouped by type; objects by constructor; native backing stores by name.
  const key = ['object', 'closure', 'native'].includes(type) ? `${type}: ${name.slice(0, 60)}` : type;
  const group = groups.get(key) ?? { count: 0, bytes: 0 };
  group.count += 1;
  group.bytes += size;
  groups.set(key, group);
}
const mib = (bytes: number): string => (bytes / 2 ** 20).toFixed(1);
process.stdout.write(`total self size ${mib(total)} MiB in ${data.nodes.length / width} nodes\n`);
for (const [key, group] of [...groups].sort((a, b) => b[1].bytes - a[1].bytes).slice(0, Number(topArg ?? 30)))
  process.stdout.write(`${mib(group.bytes).padStart(8)} MiB ${String(group.count).padStart(9)}  ${key}\n`);
