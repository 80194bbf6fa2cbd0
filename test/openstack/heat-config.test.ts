/** `openstack.heat`: defaults, environment variables, and the start-up checks of the hook flow's settings. */
import { describe, expect, it } from 'vitest';
import { loadCatalog } from '../../src/config/load-catalog.js';
import { ConfigError, loadConfig } from '../../src/config/load-config.js';
import { createVca } from '../../src/vca.js';

const heat = { stackId: 's-1', stackName: 'vca', projectId: 'p-1', url: 'http://127.0.0.1:8004' };

describe('config: openstack.heat', () => {
  it('is off by default (no stack id), and no hook flow is built', () => {
    const config = loadConfig({ env: {} });
    expect(config.openstack.heat).toMatchObject({
      stackId: '',
      pollSeconds: 10,
      drainDeadlineSeconds: 600,
      nestedDepth: 2,
      serverResourceName: 'server',
    });
    expect(createVca({ config, catalog: loadCatalog(config) }).heatHooks).toBeUndefined();
  });

  it('reads the VCA_HEAT_* variables', () => {
    const config = loadConfig({
      env: {
        VCA_HEAT_URL: 'http://heat:8004/v1/p-1',
        VCA_HEAT_STACK_ID: 'stack-id',
        VCA_HEAT_STACK_NAME: 'vca',
        VCA_HEAT_PROJECT_ID: 'p-1',
        VCA_HEAT_POLL_SECONDS: '5',
        VCA_HEAT_DRAIN_DEADLINE_SECONDS: '120',
      },
    });
    expect(config.openstack.heat).toMatchObject({
      url: 'http://heat:8004/v1/p-1',
      stackId: 'stack-id',
      stackName: 'vca',
      projectId: 'p-1',
      pollSeconds: 5,
      drainDeadlineSeconds: 120,
    });
    expect(createVca({ config, catalog: loadCatalog(config) }).heatHooks).toBeDefined();
  });

  it('refuses a stack id without its name or project, a bad URL, and no way to reach Heat', () => {
    const load = (overrides: Record<string, unknown>) => () =>
      loadConfig({ env: {}, overrides: { openstack: { heat: overrides } } });
    expect(load({ ...heat, stackName: '' })).toThrow(/openstack\.heat\.stackName/);
    expect(load({ ...heat, projectId: '' })).toThrow(/openstack\.heat\.projectId/);
    expect(load({ ...heat, url: 'heat:8004' })).toThrow(/openstack\.heat\.url: use an http\(s\) URL/);
    expect(load({ ...heat, url: '' })).toThrow(ConfigError);
    expect(load({ ...heat, url: '' })).toThrow(/give the Heat endpoint, or openstack\.keystone/);
    expect(load({ ...heat, pollSeconds: 0 })).toThrow(/openstack\.heat\.pollSeconds/);
    expect(load(heat)).not.toThrow();
  });
});
