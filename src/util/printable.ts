/**
 * Text from a server (a tag, an asset name, an error page) is printed as visible escapes, never as
 * the control characters it may hold: a newline could forge a line of the report, an escape sequence
 * could rewrite the terminal. Pure: a string in, a string without control characters out.
 */

const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/**
 * C0 and C1 controls, DEL, and the Unicode format characters that reorder or hide text (zero-width
 * characters and marks, the line and paragraph separators, bidi embeddings, overrides and isolates,
 * the byte order mark).
 */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g;

/** `s` with each unsafe character written as `\n`, `\r`, `\t`, `\xNN` or `\uNNNN`. */
export function printable(s: string): string {
  return s.replace(UNSAFE, (c) => NAMED[c] ?? escapeCode(c.charCodeAt(0)));
}

function escapeCode(code: number): string {
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

/**
 * A text of many lines (a report, an error with its hint) with every line made printable: line
 * breaks and tabs stay, every other control character is escaped.
 */
export function printableLines(text: string): string {
  return text
    .split('\n')
    .map((line) => line.split('\t').map(printable).join('\t'))
    .join('\n');
}

/** Whether a name from a server may become a file name: nothing unsafe, no path separator, not `.` or `..`. */
export function isSafeName(name: string): boolean {
  return name !== '' && name !== '.' && name !== '..' && !/[/\\]/.test(name) && printable(name) === name;
}
