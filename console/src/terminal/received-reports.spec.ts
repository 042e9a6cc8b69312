import { describe, expect, it } from 'vitest';
import { REPORT_BYTES, REPORT_MS, ReceivedReports } from './received-reports.js';

describe('ReceivedReports (the received cadence)', () => {
  it('reports the first output at once, then every 16 KiB, and otherwise 100 ms after its last report', () => {
    const reports = new ReceivedReports();
    expect(reports.take(0, false)).toBeNull(); // nothing yet
    reports.output(1000);
    expect(reports.take(0, false)).toBe(1000);
    reports.output(1500);
    expect(reports.take(10, false)).toBeNull();
    expect(reports.nextIn(10)).toBe(REPORT_MS - 10);
    reports.output(1000 + REPORT_BYTES);
    expect(reports.take(20, false)).toBe(1000 + REPORT_BYTES); // 16 KiB since the last report
    reports.output(1000 + REPORT_BYTES + 5);
    expect(reports.take(20 + REPORT_MS - 1, false)).toBeNull();
    expect(reports.take(20 + REPORT_MS, false)).toBe(1000 + REPORT_BYTES + 5);
    expect(reports.nextIn(200)).toBeNull(); // everything reported
  });

  it('withholds reports while the page is behind in drawing, and reports once it has caught up', () => {
    const reports = new ReceivedReports();
    reports.output(100);
    expect(reports.take(0, true)).toBeNull();
    reports.output(100 + 4 * REPORT_BYTES);
    expect(reports.take(500, true)).toBeNull();
    expect(reports.take(600, false)).toBe(100 + 4 * REPORT_BYTES);
  });

  it('starts over on a new socket', () => {
    const reports = new ReceivedReports();
    reports.output(100);
    expect(reports.take(0, false)).toBe(100);
    reports.start();
    reports.output(120);
    expect(reports.take(1, false)).toBe(120);
  });
});
