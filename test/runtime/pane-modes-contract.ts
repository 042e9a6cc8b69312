/**
 * The pane-modes probe of a terminal attachment (src/runtime/pane-modes.ts), against a real
 * environment of a runtime: what `probeModes()` reads at a shell prompt, at a password prompt
 * (`read -s`), under a program in cooked mode (`cat`), in a pager (`less`: alternate screen,
 * application cursor keys), after `printf '\e[?1h'`, in tmux's copy mode; and what the output tracker
 * (src/terminal/modes/output-modes.ts) sees of bracketed paste in the tmux client's real output.
 * Used by test/runtime/local-pane-modes.e2e-spec.ts and test/kubernetes/kubernetes-pane-modes.e2e-spec.ts.
 */
import type { EnvironmentSpec, PaneModes, RuntimeProvider, TerminalAttachment } from '../../src/runtime/runtime.provider.js';
import { OutputModeTracker } from '../../src/terminal/modes/output-modes.js';
import { eventually } from '../support/eventually.js';
import { capture, runToEnd, typeUntil } from './runtime-contract-support.js';

/** A running environment of the runtime under test. */
export interface PaneModesTarget {
  runtime: RuntimeProvider;
  spec: EnvironmentSpec;
}

const PROMPT: PaneModes = { echo: false, canonical: false, altScreen: false, cursorKeys: 'normal', copyMode: false };
/** How many probes are timed for the round-trip figure (printed, not asserted). */
const TIMED_PROBES = 20;

/** Probes until the modes are `expected` (the pane gets there a moment after the keys are typed). */
async function probeUntil(terminal: TerminalAttachment, expected: Partial<PaneModes>, timeoutMs = 10_000): Promise<void> {
  await eventually(async () => expect(await terminal.probeModes!()).toMatchObject(expected), timeoutMs, 100);
}

/** Registers the pane-modes tests; `target()` gives a running environment (read in tests, not while declaring them). */
export function paneModesContract(label: string, target: () => PaneModesTarget, timeoutMs = 60_000): void {
  it(
    `${label}: probeModes() reads the pane's termios and tmux's flags, and tracks bracketed paste in tmux's output`,
    async () => {
      const { runtime, spec } = target();
      const terminal = await runtime.attachTerminal(spec, { cols: 100, rows: 30 });
      const tracker = new OutputModeTracker();
      const screen = capture(terminal.stream);
      terminal.stream.on('data', (chunk: Buffer) => tracker.feed(chunk));
      try {
        // The first probe starts the helper (one more exec): timed apart, a figure like the round trip below.
        const firstStarted = performance.now();
        await terminal.probeModes!();
        const firstMs = performance.now() - firstStarted;
        await typeUntil(terminal.stream, screen, 'echo ready-$((40+2))', 'ready-42');

        // A shell prompt: readline edits with -echo -icanon and echoes itself; bash asks for bracketed paste.
        await probeUntil(terminal, PROMPT);
        await eventually(() => expect(tracker.modes.bracketedPaste).toBe(true));

        // A password prompt: echo off, canonical mode on. Bracketed paste is off while a command runs.
        terminal.stream.write('read -rs secret; echo "read-${#secret}"\r');
        await probeUntil(terminal, { echo: false, canonical: true, altScreen: false });
        await eventually(() => expect(tracker.modes.bracketedPaste).toBe(false));
        terminal.stream.write('hunter2\r');
        await eventually(() => expect(screen.text()).toContain('read-7'));
        await probeUntil(terminal, PROMPT);

        // A program in cooked mode: the kernel echoes.
        terminal.stream.write('cat\r');
        await probeUntil(terminal, { echo: true, canonical: true });
        // Between the Enter and cat's start bash has the terminal in cooked mode too: interrupt until the prompt is back.
        await eventually(async () => {
          terminal.stream.write('\x03');
          await probeUntil(terminal, PROMPT, 1_000);
        }, 10_000);

        // A pager: alternate screen, application cursor keys (keypad transmit), raw input without echo.
        terminal.stream.write('seq 1 500 | less\r');
        await probeUntil(terminal, { echo: false, canonical: false, altScreen: true, cursorKeys: 'application' });
        terminal.stream.write('q');
        await probeUntil(terminal, PROMPT);

        // DECCKM set by a program stays with the pane until reset.
        terminal.stream.write("printf '\\033[?1h'\r");
        await probeUntil(terminal, { ...PROMPT, cursorKeys: 'application' });
        terminal.stream.write("printf '\\033[?1l'\r");
        await probeUntil(terminal, PROMPT);

        // tmux's copy mode: keys go to tmux (the pane's termios is the prompt's); tmux turns bracketed paste off.
        const session = `=${terminal.sessionName}:`;
        expect((await runToEnd(runtime, spec, ['tmux', 'copy-mode', '-t', session])).exit.code).toBe(0);
        await probeUntil(terminal, { ...PROMPT, copyMode: true });
        await eventually(() => expect(tracker.modes.bracketedPaste).toBe(false));
        expect((await runToEnd(runtime, spec, ['tmux', 'send-keys', '-t', session, '-X', 'cancel'])).exit.code).toBe(0);
        await probeUntil(terminal, PROMPT);
        await eventually(() => expect(tracker.modes.bracketedPaste).toBe(true));

        // The cost of one probe (a figure for docs/runtime.md, not a test assertion).
        const times: number[] = [];
        for (let i = 0; i < TIMED_PROBES; i += 1) {
          const started = performance.now();
          // Every probe answers: the helper lives on (it is started once, at the first probe).
          expect(await terminal.probeModes!()).toEqual(PROMPT);
          times.push(performance.now() - started);
        }
        times.sort((a, b) => a - b);
        console.log(
          `[pane-modes] ${label}: the first probe (starting the helper) ${firstMs.toFixed(1)} ms; then one probe's round trip: median ${times[TIMED_PROBES / 2].toFixed(1)} ms, max ${times.at(-1)!.toFixed(1)} ms (${TIMED_PROBES} probes)`,
        );
      } finally {
        await terminal.kill();
      }
      // The helper ends with the attachment.
      expect(await terminal.probeModes!()).toBeNull();
    },
    timeoutMs,
  );
}
