// T7 containment: the gateway's nftables rendering and the adapter that loads it. The namespace
// test (nft.netns.test.ts) is what kills most mutants: it loads each mutated rule set and sends
// real packets, so it needs root like the e2e suites.
import { area } from './base.mjs';

export default area('gateway-nft', ['apps/gateway/src/enforcer/nft.ts', 'apps/gateway/src/enforcer/enforcer.ts'], ['apps/gateway/src/enforcer/*.test.ts']);
