import type { GroupSnapshot, PublishRollout } from "../../db/schema/index";
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
 * Whether a uid is inside a rollout's released share (`percent` of the clients its publish's groups
 * match). The bucket is salted with the negated rollout id, a namespace no group id (positive) shares,
 * so a rollout's waves are independent of any group's percentage. Inside at p% means inside at any
 * larger p (design.md "Rollouts": a client in wave k stays in every later wave).
 */
export function inRolloutShare(uid: string, rolloutId: number, percent: number): boolean {
  return inPercent(uid, -rolloutId, percent);
}

/** Whether a publish (with its groups and, for a rollout, its released share) takes this client. */
export function publishMatches(p: { groups: GroupSnapshot[]; rollout?: PublishRollout | null }, client: TargetClient): boolean {
  if (p.groups.length !== 0 && !p.groups.some((g) => groupMatches(g, client))) return false;
  return !p.rollout || inRolloutShare(client.uid, p.rollout.id, p.rollout.percent);
}

/**
 * The publish whose version a client should run: the most recent one that matches it. A publish with
 * no groups is for everyone; with groups, for a client in any of them; a rollout's publish only for
 * the released share of those. `publishes` must be newest first.
 * Pure and synchronous, so the feed can evaluate it per poll and per waiter without I/O.
 */
export function resolveTarget<P extends { groups: GroupSnapshot[]; rollout?: PublishRollout | null }>(publishes: readonly P[], client: TargetClient): P | null {
  for (const p of publishes) {
    if (publishMatches(p, client)) return p;
  }
  return null;
}
