import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import type { TestAccount } from '../support/accounts.js';
import type { EnvironmentBody } from '../support/environments.js';
import { bothWays, FlakyLink } from '../support/flaky-link/flaky-link.js';
import { ARTIFACTS, consoleTestBed, openTerminalAt, unexpected, waitForScreen, waitForState } from './console-page.js';

/**
 * The console's connection (docs/console.md#the-connection) through a bad link
 * (test/support/flaky-link/): the browser reaches the application only through the proxy, which
 * delays every byte and, while the person types, resets every connection (the echo and the ack
 * of what the server just wrote are lost on the way) or goes silent. Whatever was typed must reach
 * the shell exactly once, in order: the file `cat` writes is compared byte for byte.
 * Nothing here measures time; the one figure printed (blackhole → "reconnecting") is not asserted.
 */

describe('the console over a bad link: typed input arrives exactly once', () => {
  const bed = consoleTestBed();
  let owner: TestAccount & { id: string };
  let env: EnvironmentBody;
  let link: FlakyLink;

  beforeAll(async () => {
    owner = await bed.app.account('pro');
    env = await bed.app.createRunning(owner, { name: 'Exactly once', template: 'python' });
    link = await FlakyLink.start({ target: bed.app.baseUrl, seed: 15, ...bothWays({ delayMs: 40, jitterMs: 10 }) });
  }, 120_000);
  afterAll(() => link?.close());

  /** Types lines of `count` keystrokes each into the terminal, one key at a time, as a person would (fast). */
  const typeLines = async (page: Page, lines: string[]): Promise<void> => {
    for (const line of lines) {
      await page.keyboard.type(line);
      await page.keyboard.press('Enter');
    }
  };

  /**
   * Makes the link silent; `shown`: how long after that the page showed "reconnecting", by the
   * page's own clock (the same machine's), whatever else keeps the test busy meanwhile.
   */
  const blackhole = async (page: Page): Promise<{ shown: Promise<number> }> => {
    const shownAt = page.evaluate<number>(`new Promise((resolve) => {
      const pill = document.querySelector('[data-role="connection-state"]');
      new MutationObserver(() => pill.dataset.state === 'reconnecting' && resolve(Date.now())).observe(pill, { attributes: true });
    })`);
    const silentAt = Date.now();
    await link.blackhole();
    const shown = shownAt.then((at) => at - silentAt);
    void shown.catch(() => undefined); // awaited by the caller; a failure before that is the test's, not this promise's
    return { shown };
  };

  it('across resets and a blackhole while typing, the shell receives every keystroke once, in order', async () => {
    const { page, problems } = await openTerminalAt(bed.browser, link.url(`/environments/${env.id}/terminal`), owner);
    const file = `typed-${Date.now().toString(36)}.txt`;
    await typeLines(page, [`cat > ${file}`]);
    await waitForScreen(page, new RegExp(`cat > ${file}\\s*$`, 'm'));

    const typed: string[] = [];
    const batch = (round: number): string[] => Array.from({ length: 8 }, (_, i) => `r${round}-k${i}-${'abcdefgh'.slice(0, 1 + (i % 8))}`);

    // Resets while the person types: what the server wrote just before may not have been acknowledged.
    for (let round = 0; round < 4; round += 1) {
      const lines = batch(round);
      typed.push(...lines);
      const typing = typeLines(page, lines);
      await new Promise((resolve) => setTimeout(resolve, 30 + 20 * round));
      await link.reset();
      await typing;
      await waitForState(page, 'connected');
    }

    // A silent link while idle: the console notices by itself (a figure, not asserted).
    await waitForState(page, 'connected');
    const idleShownAfterMs = await (await blackhole(page)).shown;
    await link.heal();
    await waitForState(page, 'connected', 30_000);

    // A silent link while typing: the keys go into it, unacknowledged, and are sent again after the reconnection.
    const { shown } = await blackhole(page);
    const during = batch(9);
    typed.push(...during);
    await typeLines(page, during);
    const typingShownAfterMs = await shown;
    await link.heal();
    await waitForState(page, 'connected', 30_000);

    const after = batch(10);
    typed.push(...after);
    await typeLines(page, after);
    await page.keyboard.press('Control+D');
    await typeLines(page, [`sha256sum ${file}; wc -l < ${file}`]);
    const expected = createHash('sha256')
      .update(typed.map((line) => `${line}\n`).join(''))
      .digest('hex');
    await waitForScreen(page, new RegExp(`^${expected}  ${file.replace('.', '\\.')}\\s*$`, 'm'), 30_000).catch(async (error: unknown) => {
      await typeLines(page, [`cat ${file}`]);
      await page.screenshot({ path: join(ARTIFACTS, 'exactly-once-failed.png') });
      throw error;
    });
    await waitForScreen(page, new RegExp(`^${typed.length}\\s*$`, 'm'));
    await page.screenshot({ path: join(ARTIFACTS, 'exactly-once.png') });
    // Figures for docs/console.md, not assertions: how long the silent link took to show.
    console.info(`blackhole → "reconnecting" shown after ${idleShownAfterMs} ms idle, ${typingShownAfterMs} ms while typing`);
    expect(unexpected(problems)).toEqual([]);
  }, 180_000);

  it('a paste of 256 KiB, sent as several input messages, arrives byte-identical across a reset', async () => {
    const { page, problems } = await openTerminalAt(bed.browser, link.url(`/environments/${env.id}/terminal`), owner);
    const file = `pasted-${Date.now().toString(36)}.txt`;
    await typeLines(page, [`cat > ${file}`]);
    await waitForScreen(page, new RegExp(`cat > ${file}\\s*$`, 'm'));
    // Lines shorter than the tty's canonical line limit (4 KiB), 256 KiB in all: eight frames or more.
    const text = Array.from(
      { length: 2600 },
      (_, i) => `${String(i).padStart(5, '0')} ${'the quick brown fox jumps over the lazy dog '.repeat(2).slice(0, 94)}\n`,
    ).join('');
    await page.locator('[data-action="paste"]').click();
    // (fill() types it into the field at a crawl; setting the value is what a system paste does.)
    await page.locator('.sheet-text').evaluate((field: { value: string }, value: string) => (field.value = value), text);
    await page.locator('.sheet').getByRole('button', { name: 'Send' }).click();
    await link.reset();
    await waitForState(page, 'connected', 30_000);
    await page.keyboard.press('Control+D');
    await typeLines(page, [`sha256sum ${file}`]);
    const expected = createHash('sha256').update(text).digest('hex');
    await waitForScreen(page, new RegExp(`^${expected}  ${file.replace('.', '\\.')}\\s*$`, 'm'), 60_000);
    expect(unexpected(problems)).toEqual([]);
  }, 180_000);
});
