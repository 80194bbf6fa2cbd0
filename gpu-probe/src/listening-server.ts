/**
 * The probe's small HTTP listeners (/metrics, /ping) start and stop alike: listen or reject with the
 * bind error, then a close that also drops idle keep-alive connections so shutdown is not held up.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ListeningServer {
  port: number;
  close(): Promise<void>;
}

export async function listen(server: Server, port: number, host?: string): Promise<ListeningServer> {
  // Requests are short: do not let an idle keep-alive socket delay shutdown.
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
