/** T16 tamper detection: the agent starts one watch and posts its change lists to `POST /tamper`. */
export { type Baseline, baselinePath, readBaseline, writeBaseline } from './baseline.ts';
export { diffSnapshots, type TamperChange } from './diff.ts';
export { parseDpkgStatus, type Snapshot, takeSnapshot } from './snapshot.ts';
export { startTamperWatch, type TamperWatch, type TamperWatchOptions } from './watch.ts';
