/**
 * Ports on the loopback interface for the servers tests, benchmarks and the demo start: the one
 * `freePort` of the repository, and a check that a given port can be bound.
 */
import net from 'node:net';

/** Every server the kit starts binds here, and every client connects here. */
export const host = '127.0.0.1';

/**
 * A port that was free a moment ago (the OS picked it for a listener that is closed again). Another
 * process may take it before the caller binds it; prefer port 0 where the server reports its port.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** True when `port` can be bound on `host` right now. */
export function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}
