// The Tinkerbell engine's objects validate against the CRD schemas Tinkerbell publishes
// (tinkerbell-crds/README.md says how the JSON was made from ../shared/vectors/tinkerbell/*.yaml).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { GlazeId, Mac, OwnerId, SpaceId, TipsId } from '@tips/core';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import type { Metal } from '../metals/model.ts';
import type { JobId, Phase1Job } from './model.ts';
import { asList, renderTinkerbell } from './tinkerbell.ts';

// biome-ignore lint/suspicious/noExplicitAny: CRD schemas are JSON walked generically
type Schema = Record<string, any>;

const crd = (file: string) => JSON.parse(readFileSync(join(import.meta.dirname, 'tinkerbell-crds', file), 'utf8')) as { kind: string; group: string; version: string; openAPIV3Schema: Schema };

/**
 * kube-apiserver prunes fields a structural schema does not declare (silently: the object would
 * lose them) and `kubectl --validate=strict` refuses them. Both are modelled as additionalProperties
 * false on every object that lists its properties and does not preserve unknown fields.
 */
function strict(s: Schema): Schema {
  if (Array.isArray(s)) return s.map(strict);
  if (s === null || typeof s !== 'object') return s;
  const out: Schema = {};
  for (const [k, v] of Object.entries(s)) out[k] = k === 'properties' ? Object.fromEntries(Object.entries(v as Schema).map(([p, ps]) => [p, strict(ps)])) : strict(v);
  if (out.type === 'object' && out.properties && out.additionalProperties === undefined && out['x-kubernetes-preserve-unknown-fields'] !== true) out.additionalProperties = false;
  return out;
}

const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
const validators = Object.fromEntries(
  ['hardware.json', 'templates.json', 'workflows.json'].map((f) => {
    const c = crd(f);
    return [c.kind, { crd: c, validate: ajv.compile(strict(c.openAPIV3Schema)) }];
  }),
);
const RFC1123 = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

function check(obj: Schema): string[] {
  const v = validators[obj.kind as string];
  if (!v) return [`no CRD for kind ${obj.kind}`];
  const errors: string[] = [];
  if (obj.apiVersion !== `${v.crd.group}/${v.crd.version}`) errors.push(`apiVersion ${obj.apiVersion}`);
  if (!RFC1123.test(obj.metadata?.name ?? '') || obj.metadata.name.length > 253) errors.push(`metadata.name ${obj.metadata?.name}`);
  if (!v.validate(obj)) errors.push(ajv.errorsText(v.validate.errors));
  return errors;
}

const metal: Metal = {
  id: 'mtl_0000000000000000000000000a' as TipsId,
  ownerId: 'own_0000000000000000000000000a' as OwnerId,
  name: 'pi-07',
  labels: { 'tips.disk': '/dev/nvme0n1' },
  interfaces: [{ name: 'eth0', mac: '02:70:00:00:00:01' as Mac, type: 'ethernet', pxe: true }],
  engine: 'tinkerbell',
  createdAt: '2026-11-29T09:00:00.000Z',
  updatedAt: '2026-11-29T09:00:00.000Z',
};
const job: Phase1Job = {
  id: 'p1j_0000000000000000000000000a' as JobId,
  ownerId: metal.ownerId,
  metalId: metal.id,
  interfaceName: 'eth0',
  mac: '02:70:00:00:00:01' as Mac,
  spaceId: 'spc_0000000000000000000000000a' as SpaceId,
  engine: 'tinkerbell',
  state: 'queued',
  reason: null,
  detail: null,
  glaze: { id: 'glz_0000000000000000000000000a' as GlazeId, name: 'base-os', size: 1024, sha256: 'a'.repeat(64), manifest: new Uint8Array([0xd8, 0x6b]), sequence: 3 },
  tokenHash: null,
  installerKey: null,
  enrollmentSecretId: null,
  transitions: [],
  report: null,
  createdAt: '2026-11-29T09:00:00.000Z',
  updatedAt: '2026-11-29T09:00:00.000Z',
};

describe('T13 A5 the tinkerbell engine renders objects Tinkerbell accepts', () => {
  const objects = renderTinkerbell(job, metal, { namespace: 'tink-system', glazeBase: 'http://10.77.0.1:8080' });

  it('Hardware, Template and Workflow (tinkerbell.org/v1alpha1) validate against the published CRD schemas, unknown fields refused', () => {
    for (const o of asList(objects).items) expect(check(o as Schema), String((o as Schema).kind)).toEqual([]);
  });

  it('binds the three: the workflow names the template and the hardware, and maps the worker to the job MAC; the template streams the pinned Glaze to the labelled disk', () => {
    const wf = objects.workflow as Schema;
    expect(wf.spec).toEqual({ templateRef: (objects.template as Schema).metadata.name, hardwareRef: (objects.hardware as Schema).metadata.name, hardwareMap: { device_1: job.mac } });
    expect((objects.hardware as Schema).spec.interfaces[0].dhcp.mac).toBe(job.mac);
    const data = JSON.parse((objects.template as Schema).spec.data);
    expect(data.tasks[0].worker).toBe('{{.device_1}}');
    expect(data.tasks[0].actions[0].environment).toEqual({ DEST_DISK: '/dev/nvme0n1', IMG_URL: `http://10.77.0.1:8080/phase1/jobs/${job.id}/glaze`, COMPRESSED: 'false' });
  });

  it('the check can fail: a misspelt field, a wrong type and an upper-case MAC are each refused', () => {
    const hw = objects.hardware as Schema;
    const withTypo = { ...hw, spec: { ...hw.spec, interface: hw.spec.interfaces } };
    const wrongType = { ...hw, spec: { ...hw.spec, disks: 'sda' } };
    const upperMac = { ...hw, spec: { ...hw.spec, interfaces: [{ dhcp: { mac: '02:70:00:00:00:AB' } }] } };
    expect(check(withTypo).join()).toMatch(/additional properties/);
    expect(check(wrongType).join()).toMatch(/must be array/);
    expect(check(upperMac).join()).toMatch(/must match pattern/);
  });

  it('refuses a disk label that is not a /dev path (it would go into the template)', () => {
    expect(() => renderTinkerbell(job, { ...metal, labels: { 'tips.disk': '/dev/sda; reboot' } }, { namespace: 'tink-system', glazeBase: 'http://x' })).toThrow(/tips.disk/);
  });
});
