// dockerode loads code the worker never runs, about 35 MB of resident memory of it:
// docker-modem requires ssh2 (for ssh:// engine hosts), which instantiates a 16 MB WebAssembly
// memory as it loads, and dockerode requires gRPC and protobuf (for BuildKit sessions, i.e.
// image builds). The worker talks to the engine over its local socket and never builds, so
// when dockerode or docker-modem ask for these packages they get a stand-in
// (unused-dependency.cjs) that throws a plain error if anything ever uses it. Imported by
// engine.ts before dockerode, so the hook is in place when dockerode loads.
import { registerHooks } from 'node:module';

const UNUSED = new Set(['ssh2', '@grpc/grpc-js', '@grpc/proto-loader']);
const ASKING = /\/node_modules\/(dockerode|docker-modem)\//;
const STAND_IN = new URL('./unused-dependency.cjs', import.meta.url).href;

registerHooks({
  resolve(specifier, context, nextResolve) {
    if (UNUSED.has(specifier) && context.parentURL && ASKING.test(context.parentURL)) return { url: STAND_IN, format: 'commonjs', shortCircuit: true };
    return nextResolve(specifier, context);
  },
});
