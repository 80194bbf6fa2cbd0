import { describe, expect, it } from 'vitest';
import { PrometheusTextError, parsePrometheusText } from '../../gpu-probe/src/prometheus-text.js';

const one = (text: string) => {
  const { samples } = parsePrometheusText(text);
  expect(samples).toHaveLength(1);
  return samples[0]!;
};
const labels = (text: string) => Object.fromEntries(one(text).labels);
const rejects = (text: string, reason: RegExp) => {
  expect(() => parsePrometheusText(text)).toThrow(PrometheusTextError);
  expect(() => parsePrometheusText(text)).toThrow(reason);
};

describe('prometheus text format: samples', () => {
  it('reads a name, labels, a value and no timestamp', () => {
    expect(one('DCGM_FI_DEV_GPU_UTIL{gpu="0",UUID="GPU-1"} 43\n')).toEqual({
      name: 'DCGM_FI_DEV_GPU_UTIL',
      labels: new Map([
        ['gpu', '0'],
        ['UUID', 'GPU-1'],
      ]),
      value: 43,
      timestampMs: null,
    });
  });

  it('reads a sample without labels, with empty braces, and with a timestamp (also negative)', () => {
    expect(one('up 1')).toMatchObject({ name: 'up', value: 1, timestampMs: null });
    expect(one('up{} 1')).toMatchObject({ name: 'up', labels: new Map(), value: 1 });
    expect(one('http_requests_total{code="200"} 1027 1395066363000').timestampMs).toBe(1395066363000);
    expect(one('x 1 -1').timestampMs).toBe(-1);
  });

  it('tolerates blanks and tabs around tokens, a trailing comma, CRLF and a missing last newline', () => {
    expect(labels('x { a = "1" ,\tb="2", } 3\r\n')).toEqual({ a: '1', b: '2' });
    expect(one('  x\t7').value).toBe(7);
    expect(one('x{a="1"}7').value).toBe(7);
    expect(one('a:b_c:d 1').name).toBe('a:b_c:d');
  });

  it('resolves label escapes \\\\, \\" and \\n, and keeps every other character as it is', () => {
    expect(labels('x{path="C:\\\\DIR\\\\file",quote="say \\"hi\\"",lines="a\\nb"} 1')).toEqual({
      path: 'C:\\DIR\\file',
      quote: 'say "hi"',
      lines: 'a\nb',
    });
    expect(labels('x{text="} , = # {ü}"} 1')).toEqual({ text: '} , = # {ü}' });
    expect(labels('x{empty=""} 1')).toEqual({ empty: '' });
  });

  it('reads NaN, +Inf, -Inf, exponents, signs and leading dots as Go writes them', () => {
    expect(one('x NaN').value).toBeNaN();
    expect(one('x +Inf').value).toBe(Number.POSITIVE_INFINITY);
    expect(one('x -Inf').value).toBe(Number.NEGATIVE_INFINITY);
    expect(one('x Inf').value).toBe(Number.POSITIVE_INFINITY);
    expect(one('x 1.5e3').value).toBe(1500);
    expect(one('x -2E-2').value).toBe(-0.02);
    expect(one('x +.5').value).toBe(0.5);
    expect(one('x 5.').value).toBe(5);
    expect(one('x 71.874000').value).toBe(71.874);
    expect(one('x 9223372036854775794').value).toBe(2 ** 63);
  });
});

describe('prometheus text format: HELP, TYPE and comments', () => {
  it('records HELP (with its \\\\ and \\n escapes) and TYPE per family, and skips other comments', () => {
    const page = parsePrometheusText(
      [
        '# HELP DCGM_FI_DEV_FB_USED Framebuffer memory used (in MiB).',
        '# TYPE DCGM_FI_DEV_FB_USED gauge',
        '# a comment # HELP with words',
        '#HELP not_a_help line',
        '# HELP odd back\\\\slash\\nnew line \\t kept',
        '# TYPE requests counter',
        'DCGM_FI_DEV_FB_USED{gpu="0"} 5621',
        '',
        'requests 3',
      ].join('\n'),
    );
    expect(page.families.get('DCGM_FI_DEV_FB_USED')).toEqual({
      name: 'DCGM_FI_DEV_FB_USED',
      help: 'Framebuffer memory used (in MiB).',
      type: 'gauge',
    });
    expect(page.families.get('odd')).toEqual({
      name: 'odd',
      help: 'back\\slash\nnew line \\t kept',
      type: 'untyped',
    });
    expect(page.families.get('requests')?.type).toBe('counter');
    expect(page.families.has('not_a_help')).toBe(false);
    expect(page.samples.map((sample) => [sample.name, sample.value])).toEqual([
      ['DCGM_FI_DEV_FB_USED', 5621],
      ['requests', 3],
    ]);
  });

  it('reads an empty page as no samples', () => {
    expect(parsePrometheusText('')).toEqual({ families: new Map(), samples: [] });
    expect(parsePrometheusText('\n\n# only a comment\n').samples).toEqual([]);
  });
});

describe('prometheus text format: what it rejects (the whole page, naming the line)', () => {
  it.each([
    ['x{a="1} 2', /unterminated label value/],
    ['x{a="\\t"} 2', /invalid escape/],
    ['x{a="1",a="2"} 3', /label a given twice/],
    ['x{a="1" b="2"} 3', /expected "," or "}"/],
    ['x{1a="1"} 2', /expected a label name/],
    ['x{a:b="1"} 2', /expected "="/],
    ['x{a=1} 2', /expected """/],
    ['x', /has no value/],
    ['x{a="1"}', /has no value/],
    ['x one', /"one" is not a sample value/],
    ['x 0x1F', /is not a sample value/],
    ['x 1e', /is not a sample value/],
    ['x 1_000', /is not a sample value/],
    ['x 1 1.5', /is not a timestamp/],
    ['x 1 2 3', /text after the timestamp/],
    ['x 1 99999999999999999999', /out of range/],
    ['9x 1', /expected a metric name/],
    ['# TYPE x nonsense', /unknown metric type "nonsense"/],
    ['# TYPE x gauge extra', /unknown metric type/],
    ['# TYPE x gauge\n# TYPE x counter', /second TYPE line for x/],
    ['# HELP x a\n# HELP x b', /second HELP line for x/],
    ['x 1\n# TYPE x gauge', /TYPE line for x after its samples/],
    ['# HELP', /HELP needs a metric name/],
  ])('%j', (text, reason) => rejects(text, reason));

  it('says which line is wrong', () => {
    expect(() => parsePrometheusText('a 1\nb 2\nc{ 3\n')).toThrow(/^line 3: /);
  });
});
