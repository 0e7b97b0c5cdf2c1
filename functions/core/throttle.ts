/**
 * Failed sign-ins and bearer tokens per source address, as a token bucket: `burst` failures are
 * free, then one more every `refillMs` (ms). While the bucket is empty the address is throttled
 * (429 with Retry-After, whole seconds) for tokens this process does not know: tokens it verified
 * before, even with their cached copies expired, are re-verified regardless (core/token-cache.ts
 * `verifyToken`), until revoked or evicted. Per process (per isolate on Workers): a bound on
 * guessing and on the database load it causes, not an account lockout.
 */
import { logfmtLine } from "./log";

export class FailureThrottle {
  private buckets = new Map<string, { left: number; at: number; loggedAt: number }>();
  /** Failed token checks since start, and requests refused while throttled (for /metrics). */
  failures = 0;
  throttled = 0;

  constructor(
    readonly burst = DEFAULT_BURST,
    readonly refillMs = DEFAULT_REFILL_MS,
  ) {}

  private bucket(address: string, now: number) {
    const b = this.buckets.get(address);
    if (!b) return { left: this.burst, at: now, loggedAt: 0 };
    const refilled = Math.floor((now - b.at) / this.refillMs);
    if (refilled > 0) {
      b.left = Math.min(this.burst, b.left + refilled);
      b.at = b.left === this.burst ? now : b.at + refilled * this.refillMs;
    }
    return b;
  }

  /** Seconds until `address` may try an unknown token again; 0 when it may now. Counts a refusal. */
  retryAfterSeconds(address: string, now: number): number {
    const b = this.bucket(address, now);
    if (b.left > 0) return 0;
    this.throttled++;
    return Math.max(1, Math.ceil((b.at + this.refillMs - now) / 1000));
  }

  /** Records a failed check from `address`; logs once per minute per address while it keeps failing. */
  fail(address: string, now: number) {
    this.failures++;
    const b = this.bucket(address, now);
    b.left = Math.max(0, b.left - 1);
    if (!this.buckets.has(address)) {
      if (this.buckets.size >= MAX_ADDRESSES) this.buckets.delete(this.buckets.keys().next().value!);
      this.buckets.set(address, b);
    }
    if (b.left === 0 && now - b.loggedAt >= 60_000) {
      b.loggedAt = now;
      console.warn(logfmtLine("WARN", "token failures throttled", { address, failures_total: this.failures }, new Date(now)));
    }
  }
}

/** 20 wrong tokens in a row from one address are answered 401; then one per 3 s, the rest 429. */
const DEFAULT_BURST = 20;
const DEFAULT_REFILL_MS = 3_000;
const MAX_ADDRESSES = 50_000;
