/**
 * Output frames handed to the terminal and not yet drawn (parsed), in order, with their `ack`
 * (docs/terminal.md): the prediction engine learns which keystrokes' output is on screen from the
 * frames the terminal has drawn.
 */
export class PendingFrames {
  private frames: { data: string; ack: number | null }[] = [];

  constructor(private readonly max = 4096) {}

  /** A frame handed to the terminal; '' for an `ack` frame. Returns whether it applies now (an ack frame with nothing before it). */
  add(data: string, ack: number | null): boolean {
    this.frames.push({ data, ack });
    if (this.frames.length > this.max) this.frames.shift();
    return data === '' && this.frames.length === 1;
  }

  /**
   * The terminal drew `data`: the highest ack of it, of the frames before it (dropped: a flood)
   * and of the ack frames right after it; null when none carries one.
   */
  drawn(data: string): number | null {
    const index = this.frames.findIndex((frame) => frame.data === data);
    if (index < 0) return null;
    let end = index + 1;
    while (end < this.frames.length && this.frames[end].data === '') end += 1;
    let ack: number | null = null;
    for (const frame of this.frames.splice(0, end)) if (frame.ack !== null) ack = Math.max(ack ?? 0, frame.ack);
    return ack;
  }
}
