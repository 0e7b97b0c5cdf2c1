/**
 * Secret values of kv items, encrypted at rest: AES-256-GCM (authenticated) from Web Crypto, so it
 * runs on Node 20 and Workers alike, with a key derived by HKDF-SHA-256 from the server key
 * (`deps.secretKey`, which never enters the database, like the webhook secrets' key). Each value
 * gets a random 96-bit IV and is bound to where it belongs by the additional data (service id and
 * key): an envelope copied onto another item does not open.
 */
import { DomainError } from "./errors";

const enc = new TextEncoder();
const dec = new TextDecoder();
/** Envelope format version; a new scheme gets a new prefix and both open during a migration. */
const PREFIX = "v1";
const keys = new Map<string, Promise<CryptoKey>>();

/** The AES key of a server key (derived once per process and server key). */
function aesKey(secretKey: string): Promise<CryptoKey> {
  let k = keys.get(secretKey);
  if (!k) {
    k = (async () => {
      const base = await crypto.subtle.importKey("raw", enc.encode(secretKey), "HKDF", false, ["deriveKey"]);
      return crypto.subtle.deriveKey(
        { name: "HKDF", hash: "SHA-256", salt: enc.encode("edgeconf kv secrets"), info: enc.encode("aes-256-gcm v1") },
        base,
        { name: "AES-GCM", length: 256 },
        false,
        ["encrypt", "decrypt"],
      );
    })();
    if (keys.size > 16) keys.clear();
    keys.set(secretKey, k);
  }
  return k;
}

const b64 = (u: Uint8Array) => btoa(String.fromCharCode(...u));
const unb64 = (s: string) => Uint8Array.from(atob(s), (ch) => ch.charCodeAt(0));

/** What a secret is bound to: the same for the draft item and every version's copy of it. */
export const secretBinding = (serviceId: number, key: string) => `kv:${serviceId}:${key}`;

/** Encrypts `plaintext` → `"v1.<base64 IV>.<base64 ciphertext+tag>"`. */
export async function sealSecret(secretKey: string, binding: string, plaintext: string): Promise<string> {
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const ct = await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: enc.encode(binding) }, await aesKey(secretKey), enc.encode(plaintext));
  // Chunked: String.fromCharCode(...u) would overflow the stack on a large value.
  const bytes = new Uint8Array(ct);
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return `${PREFIX}.${b64(iv)}.${btoa(s)}`;
}

/**
 * Decrypts an envelope of {@link sealSecret}. Throws failed_precondition when it does not open:
 * the server key changed since it was sealed, or the envelope was moved or altered.
 */
export async function openSecret(secretKey: string, binding: string, sealed: string): Promise<string> {
  const [prefix, iv, ct] = sealed.split(".");
  try {
    if (prefix !== PREFIX || !iv || !ct) throw new Error("unknown envelope");
    const pt = await crypto.subtle.decrypt({ name: "AES-GCM", iv: unb64(iv), additionalData: enc.encode(binding) }, await aesKey(secretKey), unb64(ct));
    return dec.decode(pt);
  } catch {
    throw new DomainError("failed_precondition", `secret ${binding.split(":").slice(2).join(":")} cannot be decrypted: the server key (EDGECONF_SECRET_KEY) changed since it was stored; set it again`);
  }
}
