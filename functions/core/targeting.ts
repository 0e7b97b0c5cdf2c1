import type { GroupSnapshot } from "../../db/schema/index";
import { inPercent, matchSelector, parseSelector, type Labels, type Selector } from "./selector";

export type TargetClient = { uid: string; labels: Labels };

/** Selectors are parsed once per distinct text; the cache is bounded so it cannot grow without end. */
const parsed = new Map<string, Selector | null>();
function selectorOf(text: string): Selector | null {
  let sel = parsed.get(text);
  if (sel === undefined) {
    try {
      sel = parseSelector(text);
    } catch {
      sel = null; // a stored selector that no longer parses matches nobody
    }
    if (parsed.size >= 1000) parsed.clear();
    parsed.set(text, sel);
  }
  return sel;
}

/** Whether a group (as snapshotted in a publish) takes this client. */
export function groupMatches(group: GroupSnapshot, client: TargetClient): boolean {
  const sel = selectorOf(group.selector);
  return sel !== null && matchSelector(sel, client.labels) && inPercent(client.uid, group.id, group.percent);
}

/**
 * The publish whose version a client should run: the most recent one that matches it. A publish with
 * no groups is for everyone; with groups, for a client in any of them. `publishes` must be newest first.
 * Pure and synchronous, so the feed can evaluate it per poll and per waiter without I/O.
 */
export function resolveTarget<P extends { groups: GroupSnapshot[] }>(publishes: readonly P[], client: TargetClient): P | null {
  for (const p of publishes) {
    if (p.groups.length === 0 || p.groups.some((g) => groupMatches(g, client))) return p;
  }
  return null;
}
