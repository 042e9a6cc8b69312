/**
 * The one source of "now" for expiries, locks and schedules. Tests bind a controllable clock
 * (see test/support/fake-clock.ts) instead of sleeping.
 */
export abstract class Clock {
  abstract now(): Date;

  nowMs(): number {
    return this.now().getTime();
  }
}

export class SystemClock extends Clock {
  now(): Date {
    return new Date();
  }
}
