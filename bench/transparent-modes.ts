// Transparent-capture rows (network namespaces, real rules). Filled in once the redirect
// rules module lands; until then the catalog has none.
import type { Mode } from './modes.js';

export const transparentModes: readonly Mode[] = [];
