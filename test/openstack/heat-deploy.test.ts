/**
 * deploy/: the Heat templates (checked by Heat's own parser when python3-heat is installed, and
 * structurally always), the node's first-boot registration script run against a real gateway, the
 * systemd units, the Ceilometer event definitions applied to a real Heat notification, and the
 * `gpu-probe` command a node installs.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { tempDir } from '../../kit/temp-dir.js';
import { idleTelemetry, startTestGateway, type TestGateway, testCredentials } from '../support/gateway.js';

const root = path.resolve(import.meta.dirname, '../..');
const heatDir = path.join(root, 'deploy/heat');
const read = (relative: string) => readFileSync(path.join(root, relative), 'utf8');
const yamlOf = (relative: string) => parseYaml(read(relative)) as any;

const systemPython = '/usr/bin/python3';
const heatInstalled =
  spawnSync(systemPython, ['-c', 'import heat.engine.template'], { stdio: 'ignore' }).status === 0;

let gw: TestGateway | undefined;
let metadata: Server | undefined;
afterEach(async () => {
  await gw?.close();
  gw = undefined;
  metadata?.closeAllConnections();
  await new Promise<void>((resolve) => (metadata ? metadata.close(() => resolve()) : resolve()));
  metadata = undefined;
});

function run(command: string, args: string[], env: NodeJS.ProcessEnv = process.env, timeoutMs = 60_000) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(command, args, { cwd: root, env, timeout: timeoutMs });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
    });
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('deploy/heat: the templates', () => {
  it.skipIf(!heatInstalled)(
    "Heat 19's own parser validates both templates, and the environment's hook matches the server inside each member only",
    async () => {
      const result = await run(systemPython, [
        path.join(root, 'test/openstack/heat-template-check.py'),
        heatDir,
      ]);
      expect(result.code, result.stderr.slice(-2000)).toBe(0);
      const report = JSON.parse(result.stdout.trim().split('\n').at(-1)!);
      expect(report.templateClass).toBe('HOTemplate20180831');
      expect(report.rootResources).toEqual({
        gpu_nodes: 'OS::Heat::AutoScalingGroup',
        scale_up_policy: 'OS::Heat::ScalingPolicy',
        scale_down_policy: 'OS::Heat::ScalingPolicy',
        busy_alarm: 'OS::Aodh::GnocchiAggregationByResourcesAlarm',
        idle_alarm: 'OS::Aodh::GnocchiAggregationByResourcesAlarm',
      });
      expect(report.memberResources).toEqual({
        node_config: 'OS::Heat::CloudConfig',
        server: 'OS::Nova::Server',
      });
      expect(report.memberType).toBe('vca-gpu-node.yaml');
      // The placement that holds a scale-down (issue 11): not on the group, not on the member, on its server.
      expect(report.hooks).toEqual({
        rootOnGroup: false,
        groupOnMember: false,
        memberOnServer: true,
        memberOnConfig: false,
      });
    },
    120_000,
  );

  it('the group is of provider-template members, with policies, VCA alarms and the membership each node registers', () => {
    const stack = yamlOf('deploy/heat/vca-stack.yaml');
    const member = yamlOf('deploy/heat/vca-gpu-node.yaml');
    const environment = yamlOf('deploy/heat/vca-environment.yaml');
    const group = stack.resources.gpu_nodes;
    expect(group.type).toBe('OS::Heat::AutoScalingGroup');
    expect(group.properties.resource.type).toBe('VCA::GpuNode');
    expect(environment.resource_registry['VCA::GpuNode']).toBe('vca-gpu-node.yaml');
    // Each node registers as a member of this group of this stack.
    expect(group.properties.resource.properties.group_name).toBe('gpu_nodes');
    expect(group.properties.resource.properties.root_stack_id).toEqual({ get_param: 'OS::stack_id' });
    for (const name of ['flavor', 'image', 'network', 'key_name']) {
      expect(stack.parameters[name]?.type, name).toBe('string');
      expect(group.properties.resource.properties[name]).toEqual({ get_param: name });
    }
    // Every member parameter without a default is passed; every property passed is a parameter.
    const passed = Object.keys(group.properties.resource.properties);
    for (const [name, parameter] of Object.entries<any>(member.parameters)) {
      if (parameter.default === undefined) expect(passed, name).toContain(name);
    }
    for (const name of passed) expect(Object.keys(member.parameters), name).toContain(name);

    for (const [policy, adjustment] of [
      ['scale_up_policy', 1],
      ['scale_down_policy', -1],
    ] as const) {
      expect(stack.resources[policy]).toMatchObject({
        type: 'OS::Heat::ScalingPolicy',
        properties: {
          adjustment_type: 'change_in_capacity',
          auto_scaling_group_id: { get_resource: 'gpu_nodes' },
          scaling_adjustment: adjustment,
        },
      });
    }
    expect(stack.resources.busy_alarm.properties.alarm_actions).toEqual([{ get_param: 'vca_alarm_up_url' }]);
    expect(stack.resources.idle_alarm.properties.alarm_actions).toEqual([
      { get_param: 'vca_alarm_down_url' },
    ]);
    expect(stack.outputs.scale_down_url.value).toEqual({ get_attr: ['scale_down_policy', 'alarm_url'] });

    // The hook: on `server` inside every member; nothing on the member resource itself.
    const hooks = environment.resource_registry.resources.gpu_nodes;
    expect(hooks['*'].server.hooks).toEqual(['pre-delete']);
    expect(hooks['*'].hooks).toBeUndefined();
    expect(member.resources.server.type).toBe('OS::Nova::Server');
    expect(member.resources.server.properties.user_data).toEqual({ get_resource: 'node_config' });

    // cloud-init: the registration script and the probe unit come from these files.
    const files = member.resources.node_config.properties.cloud_config.write_files;
    const fromFile = files
      .filter((file: any) => file.content?.get_file)
      .map((file: any) => file.content.get_file);
    expect(fromFile).toEqual(['node-register.sh', '../systemd/vca-gpu-probe.service']);
    for (const file of fromFile) expect(statSync(path.join(heatDir, file)).isFile()).toBe(true);
    expect(member.resources.node_config.properties.cloud_config.runcmd).toEqual([
      ['/usr/local/sbin/vca-node-register'],
    ]);
  });

  it('the registration script is valid bash, and the probe unit runs what the script installs', () => {
    expect(spawnSync('bash', ['-n', path.join(heatDir, 'node-register.sh')]).status).toBe(0);
    const script = read('deploy/heat/node-register.sh');
    const unit = read('deploy/systemd/vca-gpu-probe.service');
    expect(unit).toMatch(/^ExecStart=\/opt\/node\/bin\/node \/opt\/vca-probe\/bin\/gpu-probe /m);
    expect(script).toContain('--prefix /opt/vca-probe');
    expect(script).toContain('tar -xJ -C /opt/node');
    expect(unit).toMatch(/^EnvironmentFile=\/etc\/vca\/gpu-probe\.env$/m);
    expect(script).toContain('/gpu-probe.env');
    expect(script).toContain('systemctl enable --now vca-gpu-probe.service');
    const gateway = read('deploy/systemd/vca-gateway.service');
    expect(gateway).toMatch(/^ExecStart=\/usr\/bin\/node \/opt\/vca\/dist\/src\/main\.js$/m);
    expect(JSON.parse(read('package.json')).scripts.start).toBe('node dist/src/main.js');
    expect(gateway).toMatch(/^RestartPreventExitStatus=78$/m);
  });
});

describe('deploy/heat: first boot of a node', () => {
  it('node-register.sh registers the node with its Heat membership through the signed hook; its token pushes telemetry', async () => {
    gw = await startTestGateway();
    const serverId = '6f1c2d3e-4b5a-4c6d-8e9f-0a1b2c3d4e5f';
    const metadataCalls: string[] = [];
    metadata = createServer((request, response) => {
      metadataCalls.push(request.url ?? '');
      if (request.url === '/openstack/latest/meta_data.json') {
        response.writeHead(200, { 'content-type': 'application/json' });
        response.end(JSON.stringify({ uuid: serverId, name: 'vca-gpu-node' }));
      } else if (request.url === '/latest/meta-data/local-ipv4') {
        response.end('127.0.0.1');
      } else response.writeHead(404).end();
    });
    await new Promise<void>((resolve) => metadata!.listen(0, '127.0.0.1', resolve));
    const metadataUrl = `http://127.0.0.1:${(metadata.address() as AddressInfo).port}`;
    const etc = tempDir('vca-node-register-');
    const rootStackId = '0d9b6f1e-7c1a-4f3e-9b5d-2e8f7a6c5b4d';
    writeFileSync(
      path.join(etc.dir, 'node-register.env'),
      [
        `VCA_URL='${gw.url}'`,
        `VCA_ORCHESTRATOR_SECRET='${testCredentials.orchestratorSecret}'`,
        `VCA_HEAT_ROOT_STACK_ID='${rootStackId}'`,
        `VCA_HEAT_MEMBER_STACK_NAME='vca-gpu_nodes-2iq6xg3ktbys-ab3kxw4zyk2c-q6mbfx3hypsd'`,
        `VCA_HEAT_GROUP='gpu_nodes'`,
        `VCA_GPU_MODEL='L4'`,
        `VCA_GPU_COUNT='1'`,
        `VCA_REGION='eu-west'`,
        `VCA_STREAM_PORT='5900'`,
        `VCA_STREAM_PROTOCOL='webrtc'`,
        `VCA_NODE_TARBALL_URL='unused'`,
        `VCA_PROBE_PACKAGE_URL='unused'`,
      ].join('\n'),
    );
    try {
      const result = await run('bash', [path.join(heatDir, 'node-register.sh')], {
        ...process.env,
        VCA_ETC_DIR: etc.dir,
        VCA_METADATA_URL: metadataUrl,
        VCA_REGISTER_ONLY: '1',
        VCA_REGISTER_ATTEMPTS: '1',
      });
      expect(result.code, result.stderr).toBe(0);
      expect(metadataCalls).toEqual(['/openstack/latest/meta_data.json', '/latest/meta-data/local-ipv4']);

      const node = await gw.request('operator', 'GET', `/v1/nodes/${serverId}`);
      expect(node.status).toBe(200);
      expect(node.body).toMatchObject({
        host: '127.0.0.1',
        port: 5900,
        protocol: 'webrtc',
        group: 'gpu_nodes',
        labels: { region: 'eu-west' },
        orchestrator: {
          kind: 'heat',
          stackId: rootStackId,
          group: 'gpu_nodes',
          member: 'ab3kxw4zyk2c',
          serverId,
          createdAt: readFileSync(path.join(etc.dir, 'created-at'), 'utf8').trim(),
        },
      });
      const probeEnv = Object.fromEntries(
        readFileSync(path.join(etc.dir, 'gpu-probe.env'), 'utf8')
          .trim()
          .split('\n')
          .map((line) => line.split(/=(.*)/s).slice(0, 2) as [string, string]),
      );
      expect(probeEnv).toMatchObject({ VCA_URL: gw.url, VCA_NODE_ID: serverId });
      expect(readFileSync(path.join(etc.dir, 'ticket-key'), 'utf8').trim()).toMatch(/^[0-9a-f]{64}$/);
      expect(statSync(path.join(etc.dir, 'gpu-probe.env')).mode & 0o077).toBe(0);
      const pushed = await gw.telemetry(serverId, probeEnv.VCA_NODE_TOKEN!, idleTelemetry(1));
      expect(pushed.status).toBe(200);

      // A rerun (cloud-init retried) is a replay: the same node and token, nothing new.
      const again = await run('bash', [path.join(heatDir, 'node-register.sh')], {
        ...process.env,
        VCA_ETC_DIR: etc.dir,
        VCA_METADATA_URL: metadataUrl,
        VCA_REGISTER_ONLY: '1',
        VCA_REGISTER_ATTEMPTS: '1',
      });
      expect(again.code, again.stderr).toBe(0);
      expect(readFileSync(path.join(etc.dir, 'gpu-probe.env'), 'utf8')).toContain(
        `VCA_NODE_TOKEN=${probeEnv.VCA_NODE_TOKEN}`,
      );
      expect((await gw.request('operator', 'GET', '/v1/nodes')).body.nodes).toHaveLength(1);
    } finally {
      etc.remove();
    }
  }, 60_000);
});

/** Ceilometer's trait extraction for the simple paths these definitions use (`payload.x`, `ctxt.x`, first found). */
function traitsOf(definition: any, notification: any): Array<[string, number, unknown]> {
  const typeCodes: Record<string, number> = { text: 1, string: 1, int: 2, float: 3, datetime: 4 };
  const traits: Array<[string, number, unknown]> = [];
  for (const [name, trait] of Object.entries<any>(definition.traits)) {
    const paths: string[] = Array.isArray(trait.fields) ? trait.fields : [trait.fields];
    for (const field of paths) {
      const value = field.split('.').reduce((at: any, key) => at?.[key], notification);
      if (value === undefined || value === null) continue;
      const type = typeCodes[trait.type ?? 'text']!;
      traits.push([
        name,
        type,
        type === 2 ? Math.trunc(Number(value)) : type === 3 ? Number(value) : String(value),
      ]);
      break;
    }
  }
  return traits;
}

describe('deploy/ceilometer: Heat autoscaling events', () => {
  it('the definition matches orchestration.autoscaling.*; its traits give the VCA the group, capacity and adjustment', async () => {
    const definitions = yamlOf('deploy/ceilometer/event_definitions.yaml');
    expect(definitions).toHaveLength(1);
    expect(definitions[0].event_type).toBe('orchestration.autoscaling.*');
    const notification = JSON.parse(
      read('test/fixtures/webhooks/oslo-notification-autoscaling-end-scale-down.json'),
    );
    const traits = traitsOf(definitions[0], { ...notification, ctxt: {} });
    expect(Object.fromEntries(traits.map(([name, , value]) => [name, value]))).toMatchObject({
      groupname: notification.payload.groupname,
      capacity: 4,
      adjustment: -1,
      adjustment_type: 'change_in_capacity',
      resource_id: notification.payload.stack_identity,
      stack_identity: notification.payload.stack_identity,
    });

    gw = await startTestGateway();
    const post = (event: object) =>
      gw!.hook('notifications', [{ generated: '2026-11-20T11:05:02.118273', raw: {}, ...event }]);
    const bare = await post({
      message_id: 'b0000000-0000-4000-8000-000000000001',
      event_type: 'orchestration.autoscaling.end',
      traits: [['service', 1, notification.publisher_id]],
    });
    const rich = await post({
      message_id: 'b0000000-0000-4000-8000-000000000002',
      event_type: 'orchestration.autoscaling.end',
      traits: [['service', 1, notification.publisher_id], ...traits],
    });
    expect(bare.status).toBe(200);
    expect(rich.status).toBe(200);
    const outcome = (answer: { body: any }) => answer.body.events[0];
    expect(outcome(bare).group).toBeNull();
    expect(outcome(bare).action).toBe('record');
    expect(outcome(rich).group).toBe(notification.payload.groupname);
    expect(outcome(rich).capacity).toEqual({
      after: 4,
      adjustment: -1,
      adjustmentType: 'change_in_capacity',
    });
    expect(outcome(rich).information).toBeGreaterThan(outcome(bare).information);

    const pipeline = yamlOf('deploy/ceilometer/event_pipeline.yaml');
    const source = pipeline.sources.find((entry: any) => entry.sinks.includes('vca_sink'));
    expect(source.events).toEqual(['orchestration.autoscaling.*']);
    const sink = pipeline.sinks.find((entry: any) => entry.name === 'vca_sink');
    expect(sink.publishers[0]).toMatch(/^https?:\/\/[^/]+\/v1\/hooks\/notifications\?/);
  });
});

describe('the gpu-probe command', () => {
  it('package.json names bin/gpu-probe.js, and `npx gpu-probe --help` prints the usage', async () => {
    const pkg = JSON.parse(read('package.json'));
    expect(pkg.bin).toEqual({ 'gpu-probe': 'bin/gpu-probe.js' });
    expect(read('bin/gpu-probe.js').startsWith('#!/usr/bin/env node\n')).toBe(true);
    expect(statSync(path.join(root, 'bin/gpu-probe.js')).mode & 0o111).not.toBe(0);
    const help = await run('npx', ['--no-install', 'gpu-probe', '--help']);
    expect(help.code, help.stderr).toBe(0);
    expect(help.stdout).toMatch(/^usage: gpu-probe --vca URL --node-id ID --token TOKEN/);
    const bad = await run('npx', ['--no-install', 'gpu-probe', '--no-such-option']);
    expect(bad.code).toBe(2);
  }, 60_000);
});
