import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Metal } from '../metals/model.ts';
import type { EngineStatus, ProvisioningEngine } from './engine.ts';
import type { Phase1Job } from './model.ts';

export interface TinkerbellOptions {
  /** Where rendered objects are written (`--tinkerbell-dir`), one JSON file per job. */
  dir: string | null;
  /** `--tinkerbell-kubectl <path>`: pipe the objects to `<path> apply -f -` instead. */
  kubectl: string | null;
  /** The namespace the objects go to (Tinkerbell's default). */
  namespace: string;
  /**
   * Base URL the metal's Tinkerbell worker fetches the Glaze from: its TIPS gateway's LAN boot URL
   * (`--tinkerbell-glaze-base`), which serves `/phase1/jobs/<job>/glaze` to the job's MAC only.
   */
  glazeBase: string;
}

export const DEFAULT_TINKERBELL: TinkerbellOptions = { dir: null, kubectl: null, namespace: 'tink-system', glazeBase: 'http://tips-gateway:8080' };

const API_VERSION = 'tinkerbell.org/v1alpha1';
/** Kubernetes object names are RFC 1123 labels: lower-case letters, digits and '-'. */
const k8sName = (id: string) => `tips-${id.toLowerCase().replace(/[^a-z0-9-]/g, '-')}`;
const DISK = /^\/dev\/[A-Za-z0-9/_-]{1,64}$/;

/** Tinkerbell actions (their published images) that stream a raw disk image and boot it. */
const ACTIONS = {
  image2disk: 'quay.io/tinkerbell/actions/image2disk:v1.0.0',
  kexec: 'quay.io/tinkerbell/actions/kexec:v1.0.0',
};

export interface TinkerbellObjects {
  hardware: Record<string, unknown>;
  template: Record<string, unknown>;
  workflow: Record<string, unknown>;
}

/**
 * The Hardware, Template and Workflow a Tinkerbell installation consumes for one Phase 1 job: the
 * metal's PXE interface, a template that streams the job's pinned Glaze to the disk (label
 * `tips.disk`, default /dev/sda) and boots it, and the workflow binding them.
 */
export function renderTinkerbell(job: Phase1Job, metal: Metal, opts: Pick<TinkerbellOptions, 'namespace' | 'glazeBase'>): TinkerbellObjects {
  if (!job.glaze) throw new Error('a job without a pinned Glaze cannot be rendered');
  const disk = metal.labels['tips.disk'] ?? '/dev/sda';
  if (!DISK.test(disk)) throw new Error(`label tips.disk must be a /dev path, got ${JSON.stringify(disk.slice(0, 64))}`);
  const labels = { 'tips.io/metal': k8sName(metal.id), 'tips.io/job': k8sName(job.id) };
  const hardwareName = k8sName(metal.id);
  const templateName = k8sName(job.id);
  const metadata = (name: string) => ({ name, namespace: opts.namespace, labels });
  const data = {
    version: '0.1',
    name: templateName,
    global_timeout: 3600,
    tasks: [
      {
        name: 'tips-phase1',
        worker: '{{.device_1}}',
        volumes: ['/dev:/dev', '/dev/console:/dev/console'],
        actions: [
          {
            name: 'stream-glaze',
            image: ACTIONS.image2disk,
            timeout: 3000,
            environment: { DEST_DISK: disk, IMG_URL: `${opts.glazeBase}/phase1/jobs/${job.id}/glaze`, COMPRESSED: 'false' },
          },
          { name: 'boot-installed', image: ACTIONS.kexec, timeout: 90, pid: 'host', environment: { BLOCK_DEVICE: `${disk}1`, FS_TYPE: 'ext4' } },
        ],
      },
    ],
  };
  return {
    hardware: {
      apiVersion: API_VERSION,
      kind: 'Hardware',
      metadata: metadata(hardwareName),
      spec: {
        disks: [{ device: disk }],
        interfaces: [{ dhcp: { mac: job.mac, hostname: metal.name, iface_name: job.interfaceName }, netboot: { allowPXE: true, allowWorkflow: true } }],
        metadata: { instance: { id: metal.id, hostname: metal.name, allow_pxe: true } },
      },
    },
    // Tinkerbell templates are YAML; JSON is YAML, so the data is written as JSON text.
    template: { apiVersion: API_VERSION, kind: 'Template', metadata: metadata(templateName), spec: { data: JSON.stringify(data, null, 2) } },
    workflow: {
      apiVersion: API_VERSION,
      kind: 'Workflow',
      metadata: metadata(templateName),
      spec: { templateRef: templateName, hardwareRef: hardwareName, hardwareMap: { device_1: job.mac } },
    },
  };
}

/** A Kubernetes List of the three objects, as `kubectl apply -f` takes it (JSON). */
export const asList = (o: TinkerbellObjects) => ({ apiVersion: 'v1', kind: 'List', items: [o.hardware, o.template, o.workflow] });

async function writeDurably(path: string, text: string): Promise<void> {
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  const fh = await open(tmp, 'wx', 0o644);
  try {
    await fh.writeFile(text);
    await fh.sync();
  } catch (e) {
    await fh.close();
    await rm(tmp, { force: true });
    throw e;
  }
  await fh.close();
  await rename(tmp, path);
}

function kubectl(path: string, args: string[], input: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(path, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      err += c.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`${path} ${args[0]} exited ${code}: ${err.trim().slice(-300)}`))));
    child.stdin.end(input);
  });
}

/** The Workflow object's name for a job (the Template shares it). */
export const workflowName = (jobId: string): string => k8sName(jobId);

const str = (v: unknown): string => (typeof v === 'string' ? v : '');

/**
 * What a Tinkerbell Workflow's status says about the job (the CRD's `status`: `state`, the tasks'
 * actions with `state` and `message`, `conditions`). Tinkerbell names states `PENDING`, `RUNNING`,
 * `SUCCESS`, `FAILED`, `TIMEOUT` (and `PREPARING`, `POST`); releases before 0.10 prefix them
 * `STATE_`. Accepts the Workflow or a List holding it. Null: no status yet.
 */
export function workflowStatus(obj: unknown): EngineStatus | null {
  let wf = obj as { kind?: unknown; items?: unknown[]; status?: Record<string, unknown> } | null;
  if (wf && wf.kind === 'List' && Array.isArray(wf.items)) wf = (wf.items.find((i) => (i as { kind?: unknown })?.kind === 'Workflow') as typeof wf) ?? null;
  const st = wf?.status;
  if (!st || typeof st !== 'object') return null;
  const state = str(st.state).toUpperCase().replace(/^STATE_/, '');
  const actions = (Array.isArray(st.tasks) ? st.tasks : []).flatMap((t) => (Array.isArray((t as { actions?: unknown }).actions) ? ((t as { actions: unknown[] }).actions as Record<string, unknown>[]) : []));
  const current = st.currentState as Record<string, unknown> | undefined;
  switch (state) {
    case '':
    case 'PENDING':
    case 'PREPARING':
      return { state: 'booting', reason: null, detail: null };
    case 'RUNNING':
    case 'POST':
      return { state: 'installing', reason: null, detail: current?.actionName ? `action ${str(current.actionName)}` : null };
    case 'SUCCESS':
      return { state: 'installed', reason: null, detail: 'Tinkerbell workflow succeeded' };
    case 'FAILED':
    case 'TIMEOUT': {
      const bad = actions.find((a) => /FAILED|TIMEOUT/.test(str(a.state).toUpperCase()));
      const cond = (Array.isArray(st.conditions) ? (st.conditions as Record<string, unknown>[]) : []).find((c) => str(c.type) === 'Failed' && str(c.status) === 'True');
      const why = bad ? `action ${str(bad.name)}: ${str(bad.message) || str(bad.state)}` : cond ? `${str(cond.reason)}: ${str(cond.message)}` : current?.actionName ? `action ${str(current.actionName)}` : null;
      return { state: 'failed', reason: state === 'TIMEOUT' ? 'workflow_timeout' : 'workflow_failed', detail: why ? why.slice(0, 500) : null };
    }
    default:
      return null;
  }
}

/** The `tinkerbell` engine (A5): hands the job to a Tinkerbell installation, which boots and installs the metal. */
export class TinkerbellEngine implements ProvisioningEngine {
  readonly name = 'tinkerbell' as const;
  constructor(private readonly opts: TinkerbellOptions) {}

  async start(job: Phase1Job, metal: Metal): Promise<{ state: 'booting'; detail: string }> {
    const json = `${JSON.stringify(asList(renderTinkerbell(job, metal, this.opts)), null, 2)}\n`;
    if (this.opts.kubectl) {
      const out = await kubectl(this.opts.kubectl, ['apply', '-f', '-'], json);
      return { state: 'booting', detail: `applied with ${this.opts.kubectl}: ${out.slice(0, 300)}` };
    }
    if (!this.opts.dir) throw new Error('the tinkerbell engine needs --tinkerbell-dir or --tinkerbell-kubectl');
    await mkdir(this.opts.dir, { recursive: true });
    const path = join(this.opts.dir, `${k8sName(job.id)}.json`);
    await writeDurably(path, json);
    return { state: 'booting', detail: `written to ${path}` };
  }

  /**
   * Reads the job's Workflow back: `kubectl get workflow -o json` when a kubectl is configured, else
   * `<dir>/<workflow>.status.json` — the Workflow as that command prints it, put there by whatever
   * watches the cluster for this master. Null while there is nothing to read.
   */
  async status(job: Phase1Job): Promise<EngineStatus | null> {
    const name = workflowName(job.id);
    let text: string;
    if (this.opts.kubectl) {
      try {
        text = await kubectl(this.opts.kubectl, ['get', 'workflow', name, '-n', this.opts.namespace, '-o', 'json'], '');
      } catch (e) {
        if (/NotFound|not found/i.test((e as Error).message)) return null;
        throw e;
      }
    } else {
      if (!this.opts.dir) return null;
      try {
        text = await readFile(join(this.opts.dir, `${name}.status.json`), 'utf8');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw e;
      }
    }
    try {
      return workflowStatus(JSON.parse(text));
    } catch {
      throw new Error(`the status of workflow ${name} is not JSON`);
    }
  }
}
