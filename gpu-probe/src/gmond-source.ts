/**
 * Samples from a Ganglia gmond instead of nvidia-smi: every interval it connects to gmond's
 * tcp_accept_channel, reads the whole XML dump (gmond writes it and closes), picks this node's HOST and
 * turns the NVIDIA GPU module's metrics into a sample. Whatever is not fresh is unknown; a gmond that does
 * not answer, a host missing from the dump or a GPU module that stopped reporting gives no sample at
 * all, so the probe goes stale and pushes nothing (the same contract as a silent nvidia-smi).
 */
import { connect } from 'node:net';
import type { Logger } from 'pino';
import { pickHost, readingsFromGmondHost } from './gmond-gpu-metrics.js';
import { readGmondXml } from './gmond-xml.js';
import type { SampleHandlers, SampleSource } from './sample-source.js';
import type { TelemetrySample } from './telemetry-sample.js';

export interface GmondAddress {
  host: string;
  port: number;
}

export const defaultGmondPort = 8649;

export interface GmondSourceOptions {
  address: GmondAddress;
  /** This node's HOST NAME (or IP) in gmond's dump; ignored when the dump holds a single host. */
  hostName: string;
  intervalMs: number;
  logger: Logger;
  /** A poll that has not finished by then is abandoned (gmond hangs). */
  timeoutMs?: number;
  /** A dump larger than this is refused (a gmond of a huge multicast cluster: point it elsewhere). */
  maxBytes?: number;
  now?: () => number;
}

/** `host:port`, `[v6]:port` or a bare host (port 8649). Throws with what is wrong. */
export function parseGmondAddress(text: string): GmondAddress {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+))(?::(\d+))?$/.exec(text.trim());
  const port = match?.[3] === undefined ? defaultGmondPort : Number(match[3]);
  if (!match || !Number.isInteger(port) || port < 1 || port > 65_535)
    throw new Error(`gmond address must be HOST:PORT (port 1..65535), got "${text}"`);
  return { host: (match[1] ?? match[2])!, port };
}

/** gmond itself did not answer (as opposed to answering without this node's GPUs). */
class UnreachableError extends Error {}

export class GmondSource implements SampleSource {
  private readonly timeoutMs: number;
  private readonly maxBytes: number;
  private readonly now: () => number;
  private handlers: SampleHandlers | null = null;
  private timer: NodeJS.Timeout | null = null;
  private abortPoll: (() => void) | null = null;
  private stopping = false;
  private reachable: boolean | null = null;
  /** Why the last poll gave no sample; null after a good one. */
  lastProblem: string | null = null;
  lastSampleAt: number | null = null;

  constructor(private readonly options: GmondSourceOptions) {
    this.timeoutMs = options.timeoutMs ?? Math.min(10_000, Math.max(2000, 2 * options.intervalMs));
    this.maxBytes = options.maxBytes ?? 64 * 1024 * 1024;
    this.now = options.now ?? Date.now;
  }

  start(handlers: SampleHandlers): void {
    this.handlers = handlers;
    this.stopping = false;
    void this.poll();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.abortPoll?.();
  }

  /**
   * One read of gmond: this node's sample, or a thrown Error saying why there is none (`--once` uses
   * it directly, so a problem is reported at once).
   */
  async sampleOnce(): Promise<TelemetrySample> {
    const ts = this.now();
    const hosts = readGmondXml(await this.readDump());
    const host = pickHost(hosts, this.options.hostName);
    if (!host) {
      const names = hosts.map((candidate) => candidate.name);
      throw new Error(
        hosts.length === 0
          ? 'gmond lists no host yet'
          : `no host "${this.options.hostName}" in gmond's dump (it has ${names.slice(0, 10).join(', ')}${names.length > 10 ? ', ...' : ''}); pass --gmond-host NAME`,
      );
    }
    const { gpus, fresh } = readingsFromGmondHost(host);
    if (gpus.length === 0)
      throw new Error(
        `host "${host.name}" in gmond has no GPU metrics: is Ganglia's nvidia module loaded there?`,
      );
    if (!fresh)
      throw new Error(
        `host "${host.name}": every GPU load metric is older than twice its TMAX (the module stopped reporting)`,
      );
    return { ts, gpus };
  }

  private async poll(): Promise<void> {
    const startedAt = this.now();
    try {
      const sample = await this.sampleOnce();
      this.setReachable(true);
      if (this.lastProblem !== null) this.options.logger.info('gmond GPU metrics fresh again');
      this.lastProblem = null;
      this.lastSampleAt = sample.ts;
      if (!this.stopping) this.handlers?.sample(sample);
    } catch (error) {
      const problem = (error as Error).message;
      this.setReachable(!(error instanceof UnreachableError));
      if (problem !== this.lastProblem && !this.stopping)
        this.options.logger.warn({ problem }, 'no GPU sample from gmond; nothing fresh is pushed');
      this.lastProblem = problem;
    }
    if (this.stopping) return;
    const elapsed = this.now() - startedAt;
    this.timer = setTimeout(() => void this.poll(), Math.max(0, this.options.intervalMs - elapsed));
  }

  private setReachable(reachable: boolean): void {
    if (reachable === this.reachable) return;
    this.reachable = reachable;
    this.handlers?.up?.(reachable);
  }

  /** One connection: gmond writes the whole dump and closes. ISO-8859-1, as its XML declaration says. */
  private readDump(): Promise<string> {
    const { host, port } = this.options.address;
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      const socket = connect({ host, port });
      const fail = (message: string) => {
        socket.destroy();
        reject(new UnreachableError(`gmond at ${host}:${port}: ${message}`));
      };
      const timer = setTimeout(() => fail(`no complete answer within ${this.timeoutMs} ms`), this.timeoutMs);
      this.abortPoll = () => fail('stopped');
      socket.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > this.maxBytes) return fail(`dump larger than ${this.maxBytes} bytes`);
        chunks.push(chunk);
      });
      socket.once('error', (error: NodeJS.ErrnoException) => fail(error.code ?? error.message));
      socket.once('close', () => {
        clearTimeout(timer);
        this.abortPoll = null;
        resolve(Buffer.concat(chunks).toString('latin1'));
      });
    });
  }
}
