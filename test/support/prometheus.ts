/**
 * Reading a Prometheus text exposition (`GET /metrics`) in tests: the value of one series, found by
 * its name and its exact set of labels.
 */

const SAMPLE = /^([A-Za-z_:][\w:]*)(?:\{(.*)\})? (\S+)$/;
const LABEL = /(\w+)="((?:[^"\\]|\\.)*)"/g;

function labelsOf(text: string | undefined): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const match of (text ?? '').matchAll(LABEL)) labels[match[1] ?? ''] = (match[2] ?? '').replace(/\\(.)/g, '$1');
  return labels;
}

/** The value of `name` with exactly `labels`; null when the exposition has no such sample. */
export function sampleValue(exposition: string, name: string, labels: Record<string, string> = {}): number | null {
  const wanted = Object.entries(labels).sort(([a], [b]) => a.localeCompare(b));
  for (const line of exposition.split('\n')) {
    const match = SAMPLE.exec(line);
    if (!match || match[1] !== name) continue;
    const found = Object.entries(labelsOf(match[2])).sort(([a], [b]) => a.localeCompare(b));
    if (JSON.stringify(found) === JSON.stringify(wanted)) return Number(match[3]);
  }
  return null;
}

/** Every label set of `name` in the exposition. */
export function seriesOf(exposition: string, name: string): Record<string, string>[] {
  return exposition
    .split('\n')
    .map((line) => SAMPLE.exec(line))
    .filter((match): match is RegExpExecArray => match !== null && match[1] === name)
    .map((match) => labelsOf(match[2]));
}
