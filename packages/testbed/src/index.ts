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
export { until } from './wait.ts';
