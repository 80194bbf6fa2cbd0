/**
 * The ping target a node offers gamers: gpu-probe answers `GET /ping` on `defaultPingPort` unless
 * started with another `--ping-port`, and a node registered with another port says so in its
 * `pingPortLabel` label (or gives a whole URL in `pingUrlLabel`), so the gateway can list it.
 */

/** The port gpu-probe serves `/ping` on by default. */
export const defaultPingPort = 9836;
/** The node label naming the port its probe answers `GET /ping` on (absent: `defaultPingPort`). */
export const pingPortLabel = 'vca.ping-port';
/** The node label giving a whole ping URL instead (e.g. an https one behind the node's proxy). */
export const pingUrlLabel = 'vca.ping-url';
