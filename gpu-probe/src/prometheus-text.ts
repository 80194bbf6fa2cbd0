/**
 * A parser of the Prometheus text exposition format (version 0.0.4), the format of every exporter's
 * `/metrics` page (https://prometheus.io/docs/instrumenting/exposition_formats/). It scans each line
 * character by character (no regular expression over a line): `# HELP name text` and `# TYPE name type`
 * annotate a metric family, other `#` lines are comments, and every other non-blank line is a sample
 * `name{label="value",...} value [timestamp]`.
 *
 * Like Prometheus itself, it rejects the whole page on the first malformed line (a scrape is all or
 * nothing): the error says which line and why.
 */

export type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';

export interface MetricFamily {
  name: string;
  help: string | null;
  type: MetricType;
}

export interface PrometheusSample {
  /** The sample's own name (`x_bucket`, `x_sum` and `x_count` keep their suffix). */
  name: string;
  /** Label names to values, escapes resolved; no label repeats. */
  labels: ReadonlyMap<string, string>;
  /** Any float, including NaN, +Inf and -Inf. */
  value: number;
  /** Milliseconds since epoch when the exporter stamped the sample, else null. */
  timestampMs: number | null;
}

export interface PrometheusPage {
  /** Families that had a HELP or TYPE line, by name. */
  families: ReadonlyMap<string, MetricFamily>;
  samples: PrometheusSample[];
}

export class PrometheusTextError extends Error {
  readonly code = 'GPU_PROBE_ERR_PROMETHEUS_TEXT';
  constructor(
    readonly line: number,
    reason: string,
  ) {
    super(`line ${line}: ${reason}`);
  }
}

const metricTypes: ReadonlySet<string> = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

const isBlank = (char: string | undefined) => char === ' ' || char === '\t' || char === '\r';
const isLetter = (char: string) => (char >= 'a' && char <= 'z') || (char >= 'A' && char <= 'Z');
const isDigit = (char: string) => char >= '0' && char <= '9';

/** Reads one line; `position` moves forward as tokens are taken. */
class LineScanner {
  position = 0;
  constructor(
    private readonly text: string,
    readonly lineNumber: number,
  ) {}

  get atEnd(): boolean {
    return this.position >= this.text.length;
  }

  peek(): string | undefined {
    return this.text[this.position];
  }

  fail(reason: string): never {
    throw new PrometheusTextError(this.lineNumber, reason);
  }

  skipBlanks(): number {
    const start = this.position;
    while (isBlank(this.peek())) this.position++;
    return this.position - start;
  }

  expect(char: string): void {
    if (this.peek() !== char) this.fail(`expected "${char}" at column ${this.position + 1}`);
    this.position++;
  }

  /** `[a-zA-Z_:][a-zA-Z0-9_:]*` for a metric name, without `:` for a label name. */
  name(kind: 'metric' | 'label'): string {
    const start = this.position;
    const allowed = (char: string, first: boolean) =>
      isLetter(char) || char === '_' || (kind === 'metric' && char === ':') || (!first && isDigit(char));
    while (!this.atEnd && allowed(this.text[this.position]!, this.position === start)) this.position++;
    if (this.position === start) this.fail(`expected a ${kind} name at column ${start + 1}`);
    return this.text.slice(start, this.position);
  }

  /** A run of non-blank characters (a value, a timestamp, a word of a comment). */
  word(): string {
    const start = this.position;
    while (!this.atEnd && !isBlank(this.peek())) this.position++;
    return this.text.slice(start, this.position);
  }

  /** The rest of the line as it stands (a HELP text, before unescaping). */
  rest(): string {
    const text = this.text.slice(this.position);
    this.position = this.text.length;
    return text;
  }

  /** A double-quoted label value: `\\`, `\"` and `\n` are the only escapes. */
  quoted(): string {
    this.expect('"');
    let value = '';
    for (;;) {
      if (this.atEnd) this.fail('unterminated label value');
      const char = this.text[this.position++]!;
      if (char === '"') return value;
      if (char !== '\\') {
        value += char;
        continue;
      }
      const escaped = this.text[this.position++];
      if (escaped === '\\') value += '\\';
      else if (escaped === '"') value += '"';
      else if (escaped === 'n') value += '\n';
      else this.fail(`invalid escape "\\${escaped ?? ''}" in a label value`);
    }
  }
}

/** HELP text escapes: `\\` and `\n` (a backslash before anything else stays as it is). */
function unescapeHelp(text: string): string {
  let result = '';
  for (let index = 0; index < text.length; index++) {
    const char = text[index]!;
    const next = text[index + 1];
    if (char === '\\' && (next === '\\' || next === 'n')) {
      result += next === 'n' ? '\n' : '\\';
      index++;
    } else result += char;
  }
  return result;
}

/** Go's float syntax as Prometheus writes it: decimal with optional exponent, NaN, ±Inf. */
function parseValue(text: string, scanner: LineScanner): number {
  const lower = text.toLowerCase();
  if (lower === 'nan') return Number.NaN;
  if (lower === '+inf' || lower === 'inf') return Number.POSITIVE_INFINITY;
  if (lower === '-inf') return Number.NEGATIVE_INFINITY;
  let index = 0;
  if (text[index] === '+' || text[index] === '-') index++;
  const digitsFrom = (start: number) => {
    let end = start;
    while (end < text.length && isDigit(text[end]!)) end++;
    return end;
  };
  let end = digitsFrom(index);
  let digits = end - index;
  index = end;
  if (text[index] === '.') {
    end = digitsFrom(index + 1);
    digits += end - index - 1;
    index = end;
  }
  if (digits > 0 && (text[index] === 'e' || text[index] === 'E')) {
    index++;
    if (text[index] === '+' || text[index] === '-') index++;
    const exponentStart = index;
    while (index < text.length && isDigit(text[index]!)) index++;
    if (index === exponentStart) digits = 0;
  }
  if (digits === 0 || index !== text.length) scanner.fail(`"${text}" is not a sample value`);
  return Number(text);
}

/** An integer number of milliseconds (int64 in the format; beyond 2^53 it is not a date anyway). */
function parseTimestamp(text: string, scanner: LineScanner): number {
  let index = text[0] === '-' || text[0] === '+' ? 1 : 0;
  if (index === text.length) scanner.fail(`"${text}" is not a timestamp`);
  for (; index < text.length; index++)
    if (!isDigit(text[index]!)) scanner.fail(`"${text}" is not a timestamp`);
  const value = Number(text);
  if (!Number.isSafeInteger(value)) scanner.fail(`timestamp "${text}" is out of range`);
  return value;
}

export function parsePrometheusText(text: string): PrometheusPage {
  const families = new Map<string, MetricFamily>();
  const helpSeen = new Set<string>();
  const typeSeen = new Set<string>();
  const sampled = new Set<string>();
  const samples: PrometheusSample[] = [];
  const lines = text.split('\n');
  // A page ends with a newline; the empty string after it is not a line.
  if (lines[lines.length - 1] === '') lines.pop();

  const family = (name: string): MetricFamily => {
    let known = families.get(name);
    if (!known) {
      known = { name, help: null, type: 'untyped' };
      families.set(name, known);
    }
    return known;
  };

  lines.forEach((line, index) => {
    const scanner = new LineScanner(line, index + 1);
    scanner.skipBlanks();
    if (scanner.atEnd) return;
    if (scanner.peek() === '#') {
      scanner.position++;
      if (scanner.skipBlanks() === 0) return; // `#HELP` or `#x`: a comment
      const keyword = scanner.word();
      if (keyword !== 'HELP' && keyword !== 'TYPE') return; // any other comment
      if (scanner.skipBlanks() === 0) scanner.fail(`${keyword} needs a metric name`);
      const name = scanner.name('metric');
      if (!scanner.atEnd && scanner.skipBlanks() === 0) scanner.fail(`bad metric name in ${keyword}`);
      if (keyword === 'HELP') {
        if (helpSeen.has(name)) scanner.fail(`second HELP line for ${name}`);
        helpSeen.add(name);
        family(name).help = unescapeHelp(scanner.rest());
        return;
      }
      const type = scanner.word();
      scanner.skipBlanks();
      if (!metricTypes.has(type) || !scanner.atEnd) scanner.fail(`unknown metric type "${type}" for ${name}`);
      if (typeSeen.has(name)) scanner.fail(`second TYPE line for ${name}`);
      if (sampled.has(name)) scanner.fail(`TYPE line for ${name} after its samples`);
      typeSeen.add(name);
      family(name).type = type as MetricType;
      return;
    }

    const name = scanner.name('metric');
    const labels = new Map<string, string>();
    const blanksAfterName = scanner.skipBlanks();
    if (scanner.peek() === '{') {
      scanner.position++;
      scanner.skipBlanks();
      while (scanner.peek() !== '}') {
        const label = scanner.name('label');
        scanner.skipBlanks();
        scanner.expect('=');
        scanner.skipBlanks();
        if (labels.has(label)) scanner.fail(`label ${label} given twice`);
        labels.set(label, scanner.quoted());
        scanner.skipBlanks();
        if (scanner.peek() === ',') {
          scanner.position++;
          scanner.skipBlanks();
        } else if (scanner.peek() !== '}')
          scanner.fail(`expected "," or "}" at column ${scanner.position + 1}`);
      }
      scanner.position++;
      scanner.skipBlanks();
    } else if (!scanner.atEnd && blanksAfterName === 0)
      scanner.fail(`expected a blank after the metric name ${name}`);
    if (scanner.atEnd) scanner.fail(`sample ${name} has no value`);
    const value = parseValue(scanner.word(), scanner);
    scanner.skipBlanks();
    let timestampMs: number | null = null;
    if (!scanner.atEnd) {
      timestampMs = parseTimestamp(scanner.word(), scanner);
      scanner.skipBlanks();
      if (!scanner.atEnd) scanner.fail('text after the timestamp');
    }
    sampled.add(name);
    samples.push({ name, labels, value, timestampMs });
  });
  return { families, samples };
}
