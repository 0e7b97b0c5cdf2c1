/**
 * How long a watcher asks the server to hold its polls (`wait`), when a proxy in between cuts
 * long requests (issue 9, item 7): shortened while held polls are cut, grown back once they get
 * through again.
 */
import type { Logger } from "./log.js";

/** A held poll is never shortened below this many seconds. */
export const MIN_HOLD_SECONDS = 1;
/** A shortened hold doubles (toward the configured one) after this many held polls in a row got through. */
export const GROW_AFTER_POLLS = 3;
/** Each growth the proxy cuts again doubles the polls needed before the next, up to this many. */
const MAX_GROW_AFTER_POLLS = 48;

/**
 * The hold of a watcher's long-polls, shortened while a proxy cuts them and grown back once they
 * get through: halves on each cut (down to MIN_HOLD_SECONDS); after GROW_AFTER_POLLS held polls
 * in a row ended normally (304 at the full hold), doubles toward the configured hold. A growth
 * the proxy cuts again doubles the polls needed before the next try (at most
 * MAX_GROW_AFTER_POLLS; back to GROW_AFTER_POLLS once a grown hold gets through), so a proxy
 * that still cuts costs one cut poll now and then, not one every few polls. Each change is said
 * once at info (the shortening at the first poll that gets through, the return to the
 * configured hold when it happens), the steps at debug.
 */
export class Hold {
  seconds: number;
  private cutFrom: number | null = null;
  private cutAfterMs = 0;
  private shortenedSaid = false;
  private grownSaid = false;
  private inARow = 0;
  private growAfter = GROW_AFTER_POLLS;
  /** The hold a growth just tried, until a poll gets through at it. */
  private trying: number | null = null;

  constructor(
    readonly configured: number,
    private readonly log: Logger,
    private readonly app: string,
  ) {
    this.seconds = configured;
  }

  /** A held poll of `wait` seconds was cut by a gateway after `afterMs`. */
  cut(afterMs: number): void {
    this.cutFrom ??= this.seconds;
    this.cutAfterMs = afterMs;
    if (this.trying === this.seconds) this.growAfter = Math.min(MAX_GROW_AFTER_POLLS, this.growAfter * 2);
    this.trying = null;
    this.inARow = 0;
    this.seconds = Math.max(MIN_HOLD_SECONDS, Math.floor(this.seconds / 2));
    this.log.debug("held poll cut by a gateway; shortening the hold", { app: this.app, holdSeconds: this.seconds });
  }

  /** A held poll of `wait` seconds got an answer: `changed` (a manifest) or not (it lasted the hold). */
  gotThrough(wait: number, changed: boolean): void {
    const { log, app } = this;
    if (this.cutFrom !== null && !this.shortenedSaid) {
      this.shortenedSaid = true;
      log.warn("held polls were cut by a proxy (gateway timeout); hold shortened", { app, fromSeconds: this.cutFrom, toSeconds: this.seconds, cutAfterMs: this.cutAfterMs });
    }
    // Only a poll held for the whole (shortened) hold shows that the proxy lets it through.
    if (changed || wait !== this.seconds || this.seconds >= this.configured) return;
    if (this.trying === this.seconds) {
      // The proxy lets this hold through: the next growth is a new question, asked as soon.
      this.trying = null;
      this.growAfter = GROW_AFTER_POLLS;
    }
    if (++this.inARow < this.growAfter) return;
    this.inARow = 0;
    this.seconds = Math.min(this.configured, this.seconds * 2);
    this.trying = this.seconds;
    log.debug("held polls get through; growing the hold back", { app, holdSeconds: this.seconds });
    if (this.seconds === this.configured && !this.grownSaid) {
      this.grownSaid = true;
      log.info("held polls get through again; hold back to the configured wait", { app, holdSeconds: this.seconds });
    }
  }
}
