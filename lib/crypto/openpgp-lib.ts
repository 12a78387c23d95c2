// openpgp.js, loaded at its first use: a worker that runs no encryptedEnv task and signs no
// OpenPGP chain of trust never holds it (about 10 MB of resident memory). Types come from
// `import type * as openpgp from 'openpgp'`, which costs nothing at run time.
import type * as openpgp from 'openpgp';

export const openpgpLib = (): Promise<typeof openpgp> => import('openpgp');
