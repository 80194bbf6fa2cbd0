/**
 * `--source <kind>=<address>`: where the probe's samples come from. Every kind builds a `SampleSource`
 * (sample-source.ts), so the pusher, the metrics and the staleness rules are the same whichever it is.
 * - `nvidia-smi[=PATH]` (the default): one long-lived nvidia-smi, PATH or `nvidia-smi` on PATH
 * - `dcgm=URL`: an NVIDIA DCGM exporter's metrics page, e.g. `http://127.0.0.1:9400/metrics`
 * - `gmond=ADDRESS`: a Ganglia gmond's XML dump
 */

export const sourceKinds = ['nvidia-smi', 'dcgm', 'gmond'] as const;
export type SourceKind = (typeof sourceKinds)[number];

export interface SourceOption {
  kind: SourceKind;
  /** What follows `=`; null when none was given (only `nvidia-smi` may omit it). */
  address: string | null;
}

export class SourceOptionError extends Error {}

/** `dcgm=http://host:9400/metrics` -> `{ kind: 'dcgm', address: 'http://host:9400/metrics' }`. */
export function parseSourceOption(text: string): SourceOption {
  const equals = text.indexOf('=');
  const kind = equals === -1 ? text : text.slice(0, equals);
  const address = equals === -1 ? null : text.slice(equals + 1);
  if (!(sourceKinds as readonly string[]).includes(kind))
    throw new SourceOptionError(
      `--source must be <kind>=<address> with kind one of ${sourceKinds.join(', ')}; got "${text}"`,
    );
  if (address === '' || (address === null && kind !== 'nvidia-smi'))
    throw new SourceOptionError(`--source ${kind} needs an address: --source ${kind}=<address>`);
  if (kind === 'dcgm') {
    let url: URL;
    try {
      url = new URL(address!);
    } catch {
      throw new SourceOptionError(
        `--source dcgm= needs an http(s) URL of the exporter's page, got "${address}"`,
      );
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw new SourceOptionError(
        `--source dcgm= needs an http(s) URL of the exporter's page, got "${address}"`,
      );
  }
  return { kind: kind as SourceKind, address };
}
