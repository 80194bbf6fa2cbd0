/** A small path router with `:param` segments: static segments win over params, 404 vs 405 is decided here. */

import { VcaError } from '../errors.js';

export type RouteMatch<T> =
  | { kind: 'found'; value: T; params: Record<string, string> }
  | { kind: 'method-not-allowed'; allow: string[] }
  | { kind: 'not-found' };

interface RouteNode<T> {
  readonly staticChildren: Map<string, RouteNode<T>>;
  paramChild: { name: string; node: RouteNode<T> } | undefined;
  readonly byMethod: Map<string, T>;
}

function createNode<T>(): RouteNode<T> {
  return { staticChildren: new Map(), paramChild: undefined, byMethod: new Map() };
}

/** Splits a path into decoded segments; a bad percent-encoding is the caller's fault (400). */
function decodeSegments(path: string): string[] {
  if (!path.startsWith('/')) {
    throw new VcaError('VCA_ERR_VALIDATION', 'The request path must start with "/"');
  }
  const raw = path.slice(1).split('/');
  return raw.map((segment) => {
    if (!segment.includes('%')) return segment;
    try {
      return decodeURIComponent(segment);
    } catch {
      throw new VcaError('VCA_ERR_VALIDATION', 'The request path contains a malformed percent-encoding');
    }
  });
}

export class Router<T> {
  private readonly root: RouteNode<T> = createNode();

  /** Registers `value` for `method` on `pattern` such as `/v1/sessions/:id`; duplicates are a programming error. */
  add(method: string, pattern: string, value: T): void {
    if (!pattern.startsWith('/')) throw new Error(`route pattern must start with "/": ${pattern}`);
    let node = this.root;
    for (const segment of pattern.slice(1).split('/')) {
      if (segment.startsWith(':')) {
        const name = segment.slice(1);
        if (name === '') throw new Error(`route pattern has an unnamed parameter: ${pattern}`);
        if (node.paramChild === undefined) {
          node.paramChild = { name, node: createNode() };
        } else if (node.paramChild.name !== name) {
          throw new Error(
            `route pattern ${pattern} names parameter :${name} where another route uses :${node.paramChild.name}`,
          );
        }
        node = node.paramChild.node;
      } else {
        let child = node.staticChildren.get(segment);
        if (child === undefined) {
          child = createNode();
          node.staticChildren.set(segment, child);
        }
        node = child;
      }
    }
    if (node.byMethod.has(method)) throw new Error(`route ${method} ${pattern} is registered twice`);
    node.byMethod.set(method, value);
  }

  /**
   * Finds the route for `method` and the raw (still percent-encoded) `path`. Throws a 400 `VcaError` for
   * a malformed encoding. When the path exists only for other methods, reports them for `Allow`.
   */
  match(method: string, path: string): RouteMatch<T> {
    const segments = decodeSegments(path);
    const allow = new Set<string>();
    const params: Record<string, string> = {};
    const found = this.walk(this.root, segments, 0, method, params, allow);
    if (found !== undefined) return { kind: 'found', value: found, params };
    if (allow.size > 0) return { kind: 'method-not-allowed', allow: [...allow].sort() };
    return { kind: 'not-found' };
  }

  private walk(
    node: RouteNode<T>,
    segments: string[],
    index: number,
    method: string,
    params: Record<string, string>,
    allow: Set<string>,
  ): T | undefined {
    if (index === segments.length) {
      const value = node.byMethod.get(method);
      if (value !== undefined) return value;
      for (const other of node.byMethod.keys()) allow.add(other);
      return undefined;
    }
    const segment = segments[index]!;
    const staticChild = node.staticChildren.get(segment);
    if (staticChild !== undefined) {
      const value = this.walk(staticChild, segments, index + 1, method, params, allow);
      if (value !== undefined) return value;
    }
    // An empty segment (`/v1/sessions/`) never fills a parameter.
    if (node.paramChild !== undefined && segment !== '') {
      const { name, node: child } = node.paramChild;
      params[name] = segment;
      const value = this.walk(child, segments, index + 1, method, params, allow);
      if (value !== undefined) return value;
      delete params[name];
    }
    return undefined;
  }
}
