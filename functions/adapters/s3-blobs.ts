import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, PutObjectCommand, S3Client, S3ServiceException } from "@aws-sdk/client-s3";
import type { BlobObject, BlobStore } from "../core/ports";

export type S3BlobConfig = {
  /** e.g. `https://s3.eu-west-1.amazonaws.com` or `http://127.0.0.1:9000` (MinIO, s3rver). Omit for AWS defaults. */
  endpoint?: string;
  bucket: string;
  region?: string;
  accessKeyId?: string;
  secretAccessKey?: string;
  /** `http://host/bucket/key` instead of `http://bucket.host/key`; needed by most self-hosted servers. */
  forcePathStyle?: boolean;
  /** Prepended to every key, e.g. `edgeconf/`. */
  prefix?: string;
};

const missing = (e: unknown) =>
  e instanceof S3ServiceException ? e.$metadata.httpStatusCode === 404 || e.name === "NoSuchKey" || e.name === "NotFound" : false;

/**
 * Blobs in an S3 bucket (AWS, MinIO, s3rver, R2's S3 API). Keys are `{prefix}{biz}/{sha256}`; a put is
 * one PutObject, which S3 makes visible atomically, so a reader never sees half a blob.
 */
export function s3BlobStore(cfg: S3BlobConfig, client?: S3Client): BlobStore & { client: S3Client } {
  const s3 =
    client ??
    new S3Client({
      endpoint: cfg.endpoint,
      region: cfg.region ?? "us-east-1",
      forcePathStyle: cfg.forcePathStyle ?? Boolean(cfg.endpoint),
      credentials: cfg.accessKeyId && cfg.secretAccessKey ? { accessKeyId: cfg.accessKeyId, secretAccessKey: cfg.secretAccessKey } : undefined,
    });
  const Bucket = cfg.bucket;
  const key = (k: string) => {
    if (!/^[A-Za-z0-9/_-]+$/.test(k) || k.includes("..")) throw new Error(`bad blob key ${k}`);
    return `${cfg.prefix ?? ""}${k}`;
  };
  const empty = () => new ReadableStream<Uint8Array>({ start: (c) => c.close() });
  const head = async (k: string) => {
    try {
      const res = await s3.send(new HeadObjectCommand({ Bucket, Key: key(k) }));
      return { size: Number(res.ContentLength ?? 0) };
    } catch (e) {
      if (missing(e)) return null;
      throw e;
    }
  };
  return {
    client: s3,
    async put(k, body) {
      await s3.send(new PutObjectCommand({ Bucket, Key: key(k), Body: body, ContentLength: body.byteLength, ContentType: "application/octet-stream" }));
    },
    async get(k, range): Promise<BlobObject | null> {
      const found = await head(k);
      if (!found) return null;
      const start = range?.start ?? 0;
      const end = Math.min(range?.end ?? found.size - 1, found.size - 1);
      if (found.size === 0 || start > end) return { body: empty(), size: found.size };
      try {
        const res = await s3.send(new GetObjectCommand({ Bucket, Key: key(k), ...(range ? { Range: `bytes=${start}-${end}` } : {}) }));
        const body = res.Body ? (res.Body.transformToWebStream() as ReadableStream<Uint8Array>) : empty();
        return { body, size: found.size };
      } catch (e) {
        if (missing(e)) return null;
        throw e;
      }
    },
    head,
    async delete(k) {
      await s3.send(new DeleteObjectCommand({ Bucket, Key: key(k) }));
    },
  };
}
