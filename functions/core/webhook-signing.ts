/**
 * Webhook signatures, as contracted in design.md "Webhook signing": one format per webhook, fixed at
 * creation, each with its own derived secret, the delivery id inside the signed string (edgeconf),
 * and a digest per signature so the same signed bytes are acted on at most once.
 */
import type { webhooks } from "../../db/schema/index";
import { constantTimeEqual, hmacSha256Hex, sha256Hex } from "./crypto";
import { DomainError } from "./errors";

export type WebhookFormat = "edgeconf" | "github";
type WebhookRow = typeof webhooks.$inferSelect;

/** Signed edgeconf deliveries whose timestamp is further than this from the server's clock are refused. */
export const MAX_SKEW_SECONDS = 300;
/** How long a GitHub-form signature (which carries no timestamp) is remembered: a replay within it is refused. */
export const GITHUB_SIGNATURE_TTL_SECONDS = 30 * 24 * 3600;

/**
 * The secret is HMAC-SHA256(server key, "<format>:<id>:<salt>"): derived again to verify a delivery,
 * so the database holds only the salt and the secret's SHA-256 (which tells a changed server key
 * apart). The format is in the derivation, so a signature made for one form never verifies in the other.
 */
export const deriveSecret = (secretKey: string, format: WebhookFormat, id: string, salt: string) => hmacSha256Hex(secretKey, `${format}:${id}:${salt}`);

/** Thrown for deliveries that fail verification; the route answers 401 and logs them as rejected. */
export class RejectedDelivery extends DomainError {
  constructor(message: string) {
    super("unauthenticated", message);
  }
}

export type SignedDelivery = {
  rawBody: Uint8Array;
  headers: (name: string) => string | undefined;
};

/** A delivery whose signature checked out: its id, the digest of its signature, and until when that signature is valid. */
export type VerifiedDelivery = { deliveryId: string; digest: string; validUntil: Date };

const enc = new TextEncoder();
const concat = (a: Uint8Array, b: Uint8Array) => {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
};

/** Delivery ids of the edgeconf form carry no '.', so "<ts>.<id>.<body>" splits one way only. */
const EDGECONF_DELIVERY_ID = /^[A-Za-z0-9_:-]{1,128}$/;
const GITHUB_DELIVERY_ID = /^[\x21-\x7e]{1,128}$/;

/**
 * Checks a delivery against its webhook's one format:
 * - `edgeconf`: `X-Edgeconf-Signature: sha256=<hex HMAC of "<timestamp>.<deliveryId>.<raw body>">`,
 *   `X-Edgeconf-Timestamp` (unix seconds, within ±{@link MAX_SKEW_SECONDS}), `X-Edgeconf-Delivery`
 *   (letters, digits, `_`, `-`, `:`; at most 128).
 * - `github`: `X-Hub-Signature-256: sha256=<hex HMAC of the raw body>`, `X-GitHub-Delivery`.
 * Signatures are compared in constant time. Throws {@link RejectedDelivery} (401) naming the header at fault.
 */
export async function verifyDelivery(w: WebhookRow, secretKey: string, d: SignedDelivery, now: Date): Promise<VerifiedDelivery> {
  const secret = await deriveSecret(secretKey, w.format, w.id, w.secretSalt);
  if (!constantTimeEqual(await sha256Hex(secret), w.secretHash)) {
    throw new DomainError("failed_precondition", "webhook secret cannot be derived: the server key changed since it was created, or the webhook predates per-format secrets; re-create the webhook");
  }
  let signed: Uint8Array;
  let given: string | undefined;
  let deliveryId: string;
  let validUntil: Date;
  if (w.format === "edgeconf") {
    given = d.headers("x-edgeconf-signature");
    if (!given) throw new RejectedDelivery(`X-Edgeconf-Signature: missing (this webhook takes the edgeconf form${d.headers("x-hub-signature-256") ? ", not GitHub's" : ""})`);
    const ts = d.headers("x-edgeconf-timestamp") ?? "";
    if (!/^\d{1,12}$/.test(ts)) throw new RejectedDelivery("X-Edgeconf-Timestamp: must be unix seconds");
    if (Math.abs(now.getTime() / 1000 - Number(ts)) > MAX_SKEW_SECONDS) throw new RejectedDelivery(`X-Edgeconf-Timestamp: more than ${MAX_SKEW_SECONDS} s from the server's clock`);
    deliveryId = d.headers("x-edgeconf-delivery") ?? "";
    if (!EDGECONF_DELIVERY_ID.test(deliveryId)) throw new RejectedDelivery("X-Edgeconf-Delivery: 1 to 128 letters, digits, '_', '-' or ':'");
    signed = concat(enc.encode(`${ts}.${deliveryId}.`), d.rawBody);
    validUntil = new Date((Number(ts) + MAX_SKEW_SECONDS + 1) * 1000);
  } else {
    given = d.headers("x-hub-signature-256");
    if (!given) throw new RejectedDelivery(`X-Hub-Signature-256: missing (this webhook takes GitHub's form${d.headers("x-edgeconf-signature") ? ", not edgeconf's" : ""})`);
    deliveryId = d.headers("x-github-delivery") ?? "";
    if (!GITHUB_DELIVERY_ID.test(deliveryId)) throw new RejectedDelivery("X-GitHub-Delivery: missing, or not 1 to 128 printable characters");
    signed = d.rawBody;
    validUntil = new Date(now.getTime() + GITHUB_SIGNATURE_TTL_SECONDS * 1000);
  }
  const expected = await hmacSha256Hex(secret, signed);
  if (!constantTimeEqual(given.trim().toLowerCase(), `sha256=${expected}`)) throw new RejectedDelivery("signature does not match the body");
  return { deliveryId, digest: await sha256Hex(expected), validUntil };
}
