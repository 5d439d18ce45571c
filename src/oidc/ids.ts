/**
 * Random ids an administrator passes to CLI commands (a client_id, a key's kid): base64url that never starts
 * with `-` or `_`, so the CLI never reads one as an option (`latchkey clients remove -Y…` was refused).
 */
import { randomBytes } from 'node:crypto';

export function operandSafeId(bytes: number): string {
  for (;;) {
    const id = randomBytes(bytes).toString('base64url');
    if (/^[A-Za-z0-9]/.test(id)) return id;
  }
}
