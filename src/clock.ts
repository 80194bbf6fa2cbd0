/** Time and identity sources, handed to the domain so tests can fake them. */
import { randomUUID } from 'node:crypto';

export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

export type IdSource = () => string;

export const randomIds: IdSource = () => randomUUID();
