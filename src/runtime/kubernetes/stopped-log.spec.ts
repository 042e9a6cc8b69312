import type { EnvironmentSpec } from '../runtime.provider.js';
import { newestLines, STOPPED_LOG_KEY, STOPPED_LOG_MAX_BYTES, stoppedLogConfigMap, stoppedLogName, stoppedLogText } from './stopped-log.js';

const at = new Date('2026-01-02T03:04:05.678Z');

describe('the log a stop keeps', () => {
  it('ends with the stop event, added only when the pod’s own line did not arrive', () => {
    const captured = [
      '2026-01-02T03:00:00.000Z [runtime] started: pod dp-x-0, template python',
      '2026-01-02T03:04:00.000Z [runtime] stopping: the workload was asked to end',
    ];
    expect(stoppedLogText([...captured], [], null, at)).toBe(`${captured.join('\n')}\n2026-01-02T03:04:05.678Z [runtime] stopped\n`);
    const withOwn = [...captured, '2026-01-02T03:04:01.000Z [runtime] stopped'];
    expect(stoppedLogText([...withOwn], [], null, at)).toBe(`${withOwn.join('\n')}\n`);
  });

  it('without a capture, keeps what the previous stop kept and says why this run’s log is missing', () => {
    const previous = ['2026-01-01T00:00:00.000Z [runtime] stopped'];
    expect(stoppedLogText(null, previous, 'container not found', at).split('\n')).toEqual([
      '2026-01-01T00:00:00.000Z [runtime] stopped',
      '2026-01-02T03:04:05.678Z [runtime] the log of this run could not be kept: container not found',
      '2026-01-02T03:04:05.678Z [runtime] stopped',
      '',
    ]);
    // A pod that never ran: the earlier log, then the stop.
    expect(stoppedLogText(null, [], null, at)).toBe('2026-01-02T03:04:05.678Z [runtime] stopped\n');
  });

  it('keeps the newest whole lines within 256 KiB', () => {
    const lines = Array.from({ length: 5000 }, (_, i) => `2026-01-02T03:04:05.000Z line ${i} ${'x'.repeat(100)}`);
    const kept = newestLines(lines);
    expect(kept.at(-1)).toBe(lines.at(-1));
    expect(kept.join('\n').length + 1).toBeLessThanOrEqual(STOPPED_LOG_MAX_BYTES);
    // One line more would not fit.
    expect(lines.slice(-(kept.length + 1)).join('\n').length + 1).toBeGreaterThan(STOPPED_LOG_MAX_BYTES);
    expect(lines.slice(-kept.length)).toEqual(kept);
    const text = stoppedLogText(lines, [], null, at);
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(STOPPED_LOG_MAX_BYTES);
    expect(text.endsWith('[runtime] stopped\n')).toBe(true);
  });

  it('lives in a ConfigMap of its own, labelled like the environment’s objects', () => {
    const spec = { id: '0123456789abcdef01234567', slug: 'demo', userId: 'u'.repeat(24), template: { name: 'python' } } as EnvironmentSpec;
    const config = stoppedLogConfigMap(spec, 'envs', 'a\n');
    expect(stoppedLogName(spec.id)).toBe('dp-0123456789abcdef01234567-log');
    expect(config.metadata).toMatchObject({
      name: 'dp-0123456789abcdef01234567-log',
      namespace: 'envs',
      labels: { 'app.kubernetes.io/managed-by': 'devpocket-server', 'devpocket.io/environment-id': spec.id },
    });
    expect(config.data).toEqual({ [STOPPED_LOG_KEY]: 'a\n' });
  });
});
