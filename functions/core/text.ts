/**
 * Characters no name or path segment may hold, wherever it is typed: controls (C0, DEL, C1),
 * line/paragraph separators, bidi controls (U+061C, U+200E/F, U+202A–E, U+2066–9: they make a
 * name read differently from what it is, as in "Trojan Source") and invisible format characters
 * (soft hyphen, zero-width, BOM, U+FFF9–B).
 */
export const UNSAFE_NAME_CHARS = /[\u0000-\u001f\u007f-\u009f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb]/;

/** The refusal every name and path segment shares, after its field name. */
export const UNSAFE_MESSAGE = "must not contain control, bidi or invisible formatting characters";

/** True when `s` holds none of {@link UNSAFE_NAME_CHARS}. */
export const noUnsafeChars = (s: string) => !UNSAFE_NAME_CHARS.test(s);
