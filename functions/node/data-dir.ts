/**
 * The embedded data folder (`.edgeconf/`: PGlite's files, blobs, the server key) is readable by
 * its owner only. New files are private because the Node entries set the process umask to 077
 * before anything is created (PGlite creates its ~1,000 files with mode 0666 and leaves the rest to
 * the umask); folders and files left open by an older version are tightened here at start.
 */
import { chmodSync, lstatSync, mkdirSync, readdirSync } from "node:fs";
import path from "node:path";

/** Umask for processes that write the data folder: nothing for group or others. */
export const PRIVATE_UMASK = 0o077;

export type Tightened = { folders: number; files: number };

/**
 * Creates `dir` (0700) if missing, then walks it and removes every group/other permission bit:
 * folders become 0700, files 0600 (symlinks are left alone and not followed). Returns how many of
 * each were changed, so the caller can say so in one log line. Throws the fs error (EACCES, ...)
 * when a mode cannot be changed: a folder that stays open must not be used silently.
 */
export function privateDataDir(dir: string): Tightened {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const out: Tightened = { folders: 0, files: 0 };
  const visit = (p: string) => {
    const st = lstatSync(p);
    if (st.isSymbolicLink()) return;
    const mode = st.mode & 0o7777;
    if (st.isDirectory()) {
      if (mode & 0o077) {
        chmodSync(p, (mode & 0o700) | 0o700);
        out.folders++;
      }
      for (const name of readdirSync(p)) visit(path.join(p, name));
    } else if (mode & 0o077) {
      chmodSync(p, mode & 0o700);
      out.files++;
    }
  };
  visit(dir);
  return out;
}
