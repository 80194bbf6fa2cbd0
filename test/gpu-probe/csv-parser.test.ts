import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { normaliseFieldName, SmiCsvParser, splitCsvLine } from '../../gpu-probe/src/csv-parser.js';
import {
  type GpuReading,
  parseSmiNumber,
  parseSmiText,
  parseThrottleActive,
  toGpuReading,
} from '../../gpu-probe/src/gpu-reading.js';
import { baseQueryFields, queryFieldVariants } from '../../gpu-probe/src/query-fields.js';
import { readingsFromCsv } from '../../gpu-probe/src/telemetry-sample.js';
import { captures } from './support/fake-smi.js';

const zeroUuid = 'GPU-00000000-0000-0000-0000-000000000000';

/** What each real capture says, read off the files by hand. */
const expected: Record<string, Omit<GpuReading, 'index' | 'uuid'>> = {
  'nvidia-geforce-rtx-4080-super.idle': {
    name: 'NVIDIA GeForce RTX 4080 SUPER',
    utilizationGpu: 0,
    utilizationMemory: 23,
    utilizationEncoder: 0,
    utilizationDecoder: 0,
    temperatureGpu: 43,
    memoryUsed: 596,
    memoryTotal: 16376,
    powerDraw: 26.2,
    powerLimit: 320,
    encoderSessions: 0,
    encoderAvgFps: 0,
    throttleActive: false, // 0x1: GPU idle, not a slowdown
  },
  'nvidia-geforce-rtx-4080-super.load': {
    name: 'NVIDIA GeForce RTX 4080 SUPER',
    utilizationGpu: 7,
    utilizationMemory: 2,
    utilizationEncoder: 72,
    utilizationDecoder: 0,
    temperatureGpu: 46,
    memoryUsed: 1474,
    memoryTotal: 16376,
    powerDraw: 84.24,
    powerLimit: 320,
    encoderSessions: 2,
    encoderAvgFps: 184,
    throttleActive: false,
  },
  'nvidia-h100-80gb-hbm3.idle': {
    name: 'NVIDIA H100 80GB HBM3',
    utilizationGpu: 0,
    utilizationMemory: 0,
    utilizationEncoder: 0,
    utilizationDecoder: 0,
    temperatureGpu: 41,
    memoryUsed: 0,
    memoryTotal: 81559,
    powerDraw: 69.85,
    powerLimit: 700,
    encoderSessions: 0,
    encoderAvgFps: 0,
    throttleActive: false,
  },
  'nvidia-h100-80gb-hbm3.load': {
    name: 'NVIDIA H100 80GB HBM3',
    utilizationGpu: 100,
    utilizationMemory: 11,
    utilizationEncoder: 0,
    utilizationDecoder: 0,
    temperatureGpu: 59,
    memoryUsed: 19818,
    memoryTotal: 81559,
    powerDraw: 631.95,
    powerLimit: 700,
    encoderSessions: 0,
    encoderAvgFps: 0,
    throttleActive: false,
  },
  'nvidia-l40s.idle': {
    name: 'NVIDIA L40S',
    utilizationGpu: 100,
    utilizationMemory: 9,
    utilizationEncoder: 0,
    utilizationDecoder: 0,
    temperatureGpu: 63,
    memoryUsed: 0,
    memoryTotal: 46068,
    powerDraw: 144.97,
    powerLimit: 350,
    encoderSessions: 0,
    encoderAvgFps: 0,
    throttleActive: false,
  },
  'nvidia-l40s.load': {
    name: 'NVIDIA L40S',
    utilizationGpu: 9,
    utilizationMemory: 2,
    utilizationEncoder: 60,
    utilizationDecoder: 0,
    temperatureGpu: 54,
    memoryUsed: 1235,
    memoryTotal: 46068,
    powerDraw: 110.23,
    powerLimit: 350,
    encoderSessions: 2,
    encoderAvgFps: 237,
    throttleActive: false,
  },
};

function parseAll(text: string, options = {}) {
  const parser = new SmiCsvParser(options);
  return { parser, records: [...parser.push(text), ...parser.end()] };
}

describe('gpu-probe csv parser: the real captures', () => {
  it('has expectations for every capture in test/fixtures/nvidia-smi', () => {
    expect(
      captures()
        .map((entry) => entry.name)
        .sort(),
    ).toEqual(Object.keys(expected).sort());
  });

  for (const { name, file } of captures()) {
    it(`reads ${name} by header name to the values in the file`, () => {
      const readings = readingsFromCsv(readFileSync(file, 'utf8'));
      expect(readings).toEqual([{ index: 0, uuid: zeroUuid, ...expected[name] }]);
    });

    it(`keeps every column of ${name} and reads its [N/A] and N/A cells as unknown`, () => {
      const text = readFileSync(file, 'utf8');
      const { parser, records } = parseAll(text);
      expect(records).toHaveLength(1);
      const record = records[0]!;
      expect(record.size).toBe(text.split('\n')[0]!.split(', ').length);
      expect(parser.malformedLines).toBe(0);
      // Unsupported on every one of these boards: the capture says [N/A] or N/A.
      expect(record.get('vgpu_driver_capability.heterogenous_multivgpu')).toBe('[N/A]');
      expect(parseSmiText(record.get('vgpu_driver_capability.heterogenous_multivgpu'))).toBeNull();
      expect(record.get('fabric.health.summary')).toBe('N/A');
      expect(parseSmiText(record.get('fabric.health.summary'))).toBeNull();
      expect(record.get('platform.chassis_serial_number')).toBe('');
      expect(parseSmiText(record.get('platform.chassis_serial_number'))).toBeNull();
      expect(parseSmiNumber(record.get('module.power.draw.average'))).toBeNull();
      expect(parseSmiNumber(record.get('retired_pages.pending'))).toBeNull();
      // Units stripped from header names, kept (and tolerated) in values.
      expect(record.get('power.draw')).toMatch(/ W$/);
      expect(record.get('clocks_event_reasons.active')).toMatch(/^0x[0-9A-F]{16}$/);
    });
  }

  it('reads the L40S under NVENC load as the design says: 9 % GPU but 60 % encoder with 2 sessions', () => {
    const reading = readingsFromCsv(
      readFileSync(captures().find((entry) => entry.name === 'nvidia-l40s.load')!.file, 'utf8'),
    )[0]!;
    expect(reading).toMatchObject({
      utilizationGpu: 9,
      utilizationEncoder: 60,
      encoderSessions: 2,
      memoryUsed: 1235,
    });
  });
});

describe('gpu-probe csv parser: what nvidia-smi may print', () => {
  const header =
    'index, uuid, name, utilization.gpu [%], utilization.memory [%], utilization.encoder [%], utilization.decoder [%], temperature.gpu, memory.used [MiB], memory.total [MiB], power.draw [W], power.limit [W], encoder.stats.sessionCount, encoder.stats.averageFps, clocks_event_reasons.active';

  it('reads values with units (csv) and without (nounits) the same', () => {
    const withUnits = `${header}\n0, GPU-a, NVIDIA L4, 54 %, 12 %, 30 %, 1 %, 61, 1235 MiB, 23034 MiB, 110.52 W, 72.00 W, 3, 60, 0x0000000000000000\n`;
    const without = `${header}\n0, GPU-a, NVIDIA L4, 54, 12, 30, 1, 61, 1235, 23034, 110.52, 72.00, 3, 60, 0x0000000000000000\n`;
    const reading = {
      index: 0,
      uuid: 'GPU-a',
      name: 'NVIDIA L4',
      utilizationGpu: 54,
      utilizationMemory: 12,
      utilizationEncoder: 30,
      utilizationDecoder: 1,
      temperatureGpu: 61,
      memoryUsed: 1235,
      memoryTotal: 23034,
      powerDraw: 110.52,
      powerLimit: 72,
      encoderSessions: 3,
      encoderAvgFps: 60,
      throttleActive: false,
    };
    expect(readingsFromCsv(withUnits)).toEqual([reading]);
    expect(readingsFromCsv(without)).toEqual([reading]);
    // And a header without units (some builds drop them with nounits).
    expect(readingsFromCsv(without.replace(/ \[[^\]]+\]/g, ''))).toEqual([reading]);
  });

  it('reads every unknown-value spelling as null, never 0', () => {
    const cells = ['[N/A]', 'N/A', '[Not Supported]', '[Unknown Error]', '', '[Insufficient Permissions]'];
    for (const cell of cells) {
      const line = `0, ${cell}, ${cell}, ${cell}, ${cell}, ${cell}, ${cell}, ${cell}, ${cell}, ${cell}, ${cell}, ${cell}, ${cell}, ${cell}, ${cell}`;
      const [reading] = readingsFromCsv(`${header}\n${line}\n`);
      expect(reading).toEqual({
        index: 0,
        uuid: null,
        name: null,
        utilizationGpu: null,
        utilizationMemory: null,
        utilizationEncoder: null,
        utilizationDecoder: null,
        temperatureGpu: null,
        memoryUsed: null,
        memoryTotal: null,
        powerDraw: null,
        powerLimit: null,
        encoderSessions: null,
        encoderAvgFps: null,
        throttleActive: null,
      });
    }
  });

  it('ignores columns it does not know, in any order', () => {
    const text =
      'fan.speed [%], name, pstate, index, utilization.encoder [%], future.field [furlongs]\n' +
      '30 %, NVIDIA T4, P0, 1, 17 %, 42 furlongs\n';
    expect(readingsFromCsv(text)).toEqual([
      expect.objectContaining({ index: 1, name: 'NVIDIA T4', utilizationEncoder: 17, utilizationGpu: null }),
    ]);
  });

  it('skips MIG-like rows and rows whose index is not an integer, keeping the others', () => {
    const text = [
      'index, name, utilization.gpu [%]',
      '0, NVIDIA A100-SXM4-40GB, [N/A]',
      'MIG 1g.5gb, NVIDIA A100-SXM4-40GB, 10 %',
      '0:1, NVIDIA A100-SXM4-40GB, 10 %',
      '[N/A], NVIDIA A100-SXM4-40GB, 10 %',
      '-1, bogus, 1 %',
      '64, beyond what the gateway accepts, 1 %',
      '1, NVIDIA A100-SXM4-40GB, 35 %',
    ].join('\n');
    const readings = readingsFromCsv(text);
    expect(readings.map((reading) => [reading.index, reading.utilizationGpu])).toEqual([
      [0, null],
      [1, 35],
    ]);
  });

  it('skips blank lines, CRLF endings and a repeated header', () => {
    const text = `\n${header}\r\n\r\n0, GPU-a, NVIDIA L4, 5 %, 1 %, 0 %, 0 %, 40, 10 MiB, 23034 MiB, 16.00 W, 72.00 W, 0, 0, 0x0000000000000001\r\n\n${header}\n\n`;
    const { records } = parseAll(text);
    expect(records).toHaveLength(1);
    expect(toGpuReading(records[0]!)).toMatchObject({ utilizationGpu: 5, temperatureGpu: 40 });
  });

  it('yields nothing for a header-only stream, and nothing at all for an empty one', () => {
    expect(parseAll(`${header}\n`).records).toEqual([]);
    expect(parseAll('').records).toEqual([]);
    expect(readingsFromCsv(`${header}\n`)).toEqual([]);
  });

  it('reassembles rows split across arbitrary stdout chunks', () => {
    const text = `${header}\n0, GPU-a, NVIDIA L4, 54 %, 12 %, 30 %, 1 %, 61, 1235 MiB, 23034 MiB, 110.52 W, 72.00 W, 3, 60, 0x0\n1, GPU-b, NVIDIA L4, 4 %, 1 %, 3 %, 0 %, 41, 35 MiB, 23034 MiB, 20.00 W, 72.00 W, 0, 0, 0x1\n`;
    const parser = new SmiCsvParser();
    const records = [];
    for (let position = 0; position < text.length; position += 7)
      records.push(...parser.push(text.slice(position, position + 7)));
    records.push(...parser.end());
    expect(records.map((record) => toGpuReading(record)?.uuid)).toEqual(['GPU-a', 'GPU-b']);
  });

  it('reads a last line that has no newline when the stream ends', () => {
    const { records } = parseAll('index, name\n0, NVIDIA L4');
    expect(records.map((record) => record.get('name'))).toEqual(['NVIDIA L4']);
  });

  it('drops a truncated row instead of shifting its columns', () => {
    const { parser, records } = parseAll(`${header}\n0, GPU-a, NVIDIA L4, 54 %\n`);
    expect(records).toEqual([]);
    expect(parser.malformedLines).toBe(1);
  });

  it('maps a headerless stream (noheader) by the fields it asked for', () => {
    const fields = queryFieldVariants[0]!;
    const line =
      '2, GPU-c, NVIDIA L40S, 9, 2, 60, 0, 54, 1235, 46068, 110.23, 350.00, 2, 237, 0x0000000000000004';
    expect(readingsFromCsv(`${line}\n`, fields)).toEqual([
      expect.objectContaining({ index: 2, utilizationEncoder: 60, encoderSessions: 2, throttleActive: true }),
    ]);
    // Without the field list a headerless line cannot be read safely.
    expect(readingsFromCsv(`${line}\n`)).toEqual([]);
  });

  it('reads the legacy clocks_throttle_reasons.active column too', () => {
    const text = 'index, clocks_throttle_reasons.active\n0, 0x0000000000000020\n';
    expect(readingsFromCsv(text)[0]!.throttleActive).toBe(true);
  });

  it('honours quoted cells so a comma inside a value cannot shift columns', () => {
    expect(splitCsvLine('0, "NVIDIA L4, rev 2", 5 %')).toEqual(['0', 'NVIDIA L4, rev 2', '5 %']);
    expect(splitCsvLine('a,"say ""hi""",c')).toEqual(['a', 'say "hi"', 'c']);
  });

  it('clamps percentages to 0..100 and drops negative quantities, which the gateway would refuse', () => {
    const text = 'index, utilization.gpu [%], memory.used [MiB], temperature.gpu\n0, 104 %, -5 MiB, 900\n';
    expect(readingsFromCsv(text)[0]).toMatchObject({
      utilizationGpu: 100,
      memoryUsed: null,
      temperatureGpu: null,
    });
  });

  it('normalises header names: units dropped, case folded', () => {
    expect(normaliseFieldName(' utilization.gpu [%]')).toBe('utilization.gpu');
    expect(normaliseFieldName('encoder.stats.sessionCount')).toBe('encoder.stats.sessioncount');
    expect(baseQueryFields[0]).toBe('index');
  });
});

describe('gpu-probe csv parser: throttleActive from the clock-event bitmask', () => {
  it.each([
    ['0x0000000000000000', false, 'nothing active'],
    ['0x0000000000000001', false, 'GPU idle'],
    ['0x0000000000000002', false, 'applications clocks setting'],
    ['0x0000000000000010', false, 'sync boost'],
    ['0x0000000000000100', false, 'display clock setting'],
    ['0x0000000000000013', false, 'idle + app clocks + sync boost'],
    ['0x0000000000000004', true, 'SW power cap'],
    ['0x0000000000000008', true, 'HW slowdown'],
    ['0x0000000000000020', true, 'SW thermal slowdown'],
    ['0x0000000000000040', true, 'HW thermal slowdown'],
    ['0x0000000000000080', true, 'HW power brake'],
    ['0x0000000000000005', true, 'idle + SW power cap'],
    ['0x00000000000001FF', true, 'every reason (the "supported" mask)'],
    ['64', true, 'decimal 64 = HW thermal'],
    ['[N/A]', null, 'unknown'],
    ['Not Active', null, 'not a mask'],
  ] as Array<[string, boolean | null, string]>)('%s -> %s (%s)', (text, active) => {
    expect(parseThrottleActive(text)).toBe(active);
  });
});
