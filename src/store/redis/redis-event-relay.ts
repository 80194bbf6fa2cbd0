/**
 * Session events across gateway instances over Redis pub/sub, on the gaming cluster's channel. Each
 * instance tags what it publishes with its id and ignores its own messages. Events of one event-loop
 * turn travel in one PUBLISH (under load many share it). Delivery is best effort (pub/sub): a socket
 * that missed a message still reads the truth from the store on `resume`.
 */
import type { Cluster, Redis } from 'ioredis';
import type { EventRelay, VcaEvent, VcaEventListener } from '../../sessions/events.js';

interface Envelope {
  from: string;
  events: unknown[];
}

function encode(event: VcaEvent): unknown {
  return event.type === 'queue-positions' ? { ...event, positions: [...event.positions] } : event;
}

function decode(event: { type: string; positions?: Array<[string, number]> }): VcaEvent {
  return (
    event.type === 'queue-positions' ? { ...event, positions: new Map(event.positions) } : event
  ) as VcaEvent;
}

export class RedisEventRelay implements EventRelay {
  private readonly publisher: Redis | Cluster;
  private readonly subscriber: Redis | Cluster;
  private readonly channel: string;
  private readonly instanceId: string;
  private readonly listeners = new Set<VcaEventListener>();
  private readonly onError: (error: unknown) => void;

  private constructor(
    publisher: Redis | Cluster,
    subscriber: Redis | Cluster,
    channel: string,
    instanceId: string,
    onError: (error: unknown) => void,
  ) {
    this.publisher = publisher;
    this.subscriber = subscriber;
    this.channel = channel;
    this.instanceId = instanceId;
    this.onError = onError;
    subscriber.on('message', (_channel: string, text: string) => {
      let envelope: Envelope;
      try {
        envelope = JSON.parse(text) as Envelope;
      } catch (error) {
        this.onError(error);
        return;
      }
      if (envelope.from === this.instanceId || !Array.isArray(envelope.events)) return;
      for (const encoded of envelope.events) {
        const event = decode(encoded as { type: string });
        for (const listener of this.listeners) {
          try {
            listener(event);
          } catch (error) {
            this.onError(error);
          }
        }
      }
    });
  }

  /** Subscribes a duplicate of `client` to `channel`; `client` itself publishes. */
  static async start(
    client: Redis | Cluster,
    channel: string,
    instanceId: string,
    onError: (error: unknown) => void = () => {},
  ): Promise<RedisEventRelay> {
    const subscriber = client.duplicate();
    // One report per outage: ioredis retries by itself (and re-subscribes once it is back).
    let lost = false;
    subscriber.on('error', (error: unknown) => {
      if (!lost) onError(error);
      lost = true;
    });
    subscriber.on('ready', () => {
      lost = false;
    });
    // The store's client has no offline queue and connects lazily: a command before the connection is
    // ready fails at once ("Stream isn't writeable"), so connect first.
    if (subscriber.status === 'wait') await subscriber.connect();
    await subscriber.subscribe(channel);
    return new RedisEventRelay(client, subscriber, channel, instanceId, onError);
  }

  private pending: unknown[] = [];

  publish(event: VcaEvent): void {
    this.pending.push(encode(event));
    if (this.pending.length > 1) return;
    setImmediate(() => {
      const envelope: Envelope = { from: this.instanceId, events: this.pending };
      this.pending = [];
      this.publisher.publish(this.channel, JSON.stringify(envelope)).catch(this.onError);
    });
  }

  onRemote(listener: VcaEventListener): void {
    this.listeners.add(listener);
  }

  async close(): Promise<void> {
    this.listeners.clear();
    await this.subscriber.quit().catch(() => this.subscriber.disconnect());
  }
}
