// Stands in for a package dockerode loads but the worker never runs (see lean-dockerode.ts).
// Loading it costs nothing; using any part of it throws, naming what is not supported.
'use strict';
const message = 'This part of dockerode (ssh:// Docker hosts, BuildKit sessions) is not loaded by docker-worker: it talks to the engine over its local socket only.';
const unusable = function () { throw new Error(message); };
module.exports = new Proxy({}, {
  get(_target, key) {
    if (typeof key === 'symbol' || key === '__esModule' || key === 'then') return undefined;
    return unusable;
  },
});
