export { type DatagramLink, Lwm2mSim, type Lwm2mSimOptions, type SimFirmwareEvent, udpLink } from './lwm2m-sim.ts';
export {
  type ExecResult,
  listNamespaces,
  Namespace,
  NsProcess,
  run,
  runOk,
  sweepStaleNamespaces,
  TestbedError,
  Topology,
} from './netns.ts';
export { IPXE_VIRTIO_ROM, QEMU, type QemuAccel, QemuMetal, type QemuMetalOptions, qemuAccel, stripTerminal } from './qemu.ts';
export { type S3TestServer, startS3Server } from './s3.ts';
export { type Swtpm, startSwtpm } from './swtpm.ts';
export { until } from './wait.ts';
