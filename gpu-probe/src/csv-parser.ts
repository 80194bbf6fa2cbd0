/**
 * Streaming parser for `nvidia-smi --query-gpu=... --format=csv[,nounits][,noheader]` output: it splits
 * lines, reads the header by field NAME (units like `[%]` stripped), and turns each data line into a
 * record keyed by lower-cased field name. It knows nothing about what the fields mean.
 */

/** One data line: lower-cased field name -> raw text, trimmed. */
export type SmiRecord = ReadonlyMap<string, string>;

export interface SmiCsvParserOptions {
  /**
   * The fields asked for, in order. Used only when the stream has no header line (`noheader`), to map
   * columns by position; with a header, the header wins.
   */
  expectedFields?: readonly string[];
}

/** `utilization.gpu [%]` -> `utilization.gpu`; names compare case-insensitively. */
export function normaliseFieldName(header: string): string {
  return header
    .replace(/\[[^\]]*\]/g, '')
    .trim()
    .toLowerCase();
}

/**
 * Splits one CSV line. nvidia-smi separates with ", " and does not quote, but double quotes are honoured
 * anyway so that a value with a comma (a future GPU name, a hostname) cannot shift every later column.
 */
export function splitCsvLine(line: string): string[] {
  const cells: string[] = [];
  let current = '';
  let quoted = false;
  for (let position = 0; position < line.length; position++) {
    const character = line[position]!;
    if (quoted) {
      if (character === '"' && line[position + 1] === '"') {
        current += '"';
        position++;
      } else if (character === '"') quoted = false;
      else current += character;
    } else if (character === '"' && current.trim() === '') {
      quoted = true;
      current = '';
    } else if (character === ',') {
      cells.push(current.trim());
      current = '';
    } else current += character;
  }
  cells.push(current.trim());
  return cells;
}

export class SmiCsvParser {
  private columns: string[] | null = null;
  private headerLine: string | null = null;
  private partial = '';
  /** Lines dropped because their column count did not match the header (truncated or garbled). */
  malformedLines = 0;

  constructor(private readonly options: SmiCsvParserOptions = {}) {}

  /** Whether a real header line was read (not just the expected fields assumed). */
  get sawHeader(): boolean {
    return this.headerLine !== null;
  }

  /** The normalised field names of the header, once one has been read. */
  get fields(): readonly string[] | null {
    return this.columns;
  }

  /** Feeds a chunk of stdout (any split); returns the complete data records it finished. */
  push(chunk: string): SmiRecord[] {
    const text = this.partial + chunk;
    const lines = text.split('\n');
    // The last piece has no newline yet: keep it for the next chunk.
    this.partial = lines.pop() ?? '';
    const records: SmiRecord[] = [];
    for (const line of lines) {
      const record = this.line(line);
      if (record) records.push(record);
    }
    return records;
  }

  /** Parses what is left without a trailing newline (the stream ended). */
  end(): SmiRecord[] {
    const rest = this.partial;
    this.partial = '';
    const record = this.line(rest);
    return record ? [record] : [];
  }

  /** Parses one line: a header (remembered, returns undefined), a data record, or nothing (blank). */
  line(rawLine: string): SmiRecord | undefined {
    const line = rawLine.replace(/\r$/, '');
    if (line.trim() === '') return undefined;
    const cells = splitCsvLine(line);
    if (this.columns === null) {
      if (this.looksLikeHeader(cells)) {
        this.columns = cells.map(normaliseFieldName);
        this.headerLine = line;
        return undefined;
      }
      const expected = this.options.expectedFields;
      if (!expected) {
        this.malformedLines++;
        return undefined;
      }
      this.columns = expected.map(normaliseFieldName);
    } else if (line === this.headerLine) {
      // Some nvidia-smi builds repeat the header; it is not data.
      return undefined;
    }
    if (cells.length !== this.columns.length) {
      this.malformedLines++;
      return undefined;
    }
    const record = new Map<string, string>();
    for (const [position, name] of this.columns.entries()) {
      // A duplicated column keeps its first value.
      if (!record.has(name)) record.set(name, cells[position]!);
    }
    return record;
  }

  /** A header names fields: the `index` column (always asked for) appears as a name, not a number. */
  private looksLikeHeader(cells: readonly string[]): boolean {
    return cells.some((cell) => normaliseFieldName(cell) === 'index');
  }
}
