/**
 * What a command changed on the server, each change with the request that undoes it, so a change
 * made of many requests (an `import`) is whole or nothing: when the server refuses one part-way,
 * `undo` runs the undos newest first. The server has no transaction across requests; this is the
 * next best thing, and what it could not undo is said, by name.
 */
import type { Output } from "./context.js";

type Undo = { what: string; run: () => Promise<unknown> };

export class Journal {
  private readonly undos: Undo[] = [];

  /** Records that `what` was done and how to take it back. */
  done(what: string, undo: () => Promise<unknown>): void {
    this.undos.push({ what, run: undo });
  }

  get size(): number {
    return this.undos.length;
  }

  /** Undoes every recorded change, newest first; answers the ones that could not be undone (each with why). */
  async undo(io: Output): Promise<string[]> {
    const failed: string[] = [];
    for (const u of this.undos.splice(0).reverse()) {
      try {
        await u.run();
      } catch (err) {
        failed.push(`${u.what}: ${(err as Error).message}`);
        io.err(`could not undo: ${u.what}: ${(err as Error).message}`);
      }
    }
    return failed;
  }

  /**
   * After `err` stopped `command` part-way: undoes what it changed, adds to `err`'s message what the
   * draft is left as (as it was, or which changes could not be undone), and throws it.
   */
  async abandon(io: Output, err: unknown, command: string): Promise<never> {
    const changes = this.size;
    const failed = await this.undo(io);
    const outcome = failed.length ? `${failed.length} of ${changes} changes could NOT be undone (listed above); the draft is partly changed` : `the ${changes} changes made before it were undone; the draft is as it was`;
    if (err instanceof Error) err.message += `\n${command} stopped: ${outcome}`;
    throw err;
  }
}
