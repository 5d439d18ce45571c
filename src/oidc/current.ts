/**
 * Holds the live oidc-provider instance. oidc-provider fixes its keystore at construction, so when the
 * published signing keys change (a rotation on any instance or by the CLI) a new instance is built from
 * the database and swapped in; protocol state lives in the database, so nothing is lost in the swap.
 * Each refresh first promotes the rotated-in keys whose time has come (keys.ts `activationDelay`).
 */
import type Provider from 'oidc-provider';
import type { Logger } from '../log.ts';
import type { Store } from '../store/index.ts';
import { loadJwks, promoteDueKeys } from './keys.ts';
import { createProvider, type ProviderDeps } from './provider.ts';

export interface ProviderHolder {
  current(): Provider;
  /** Promotes the rotated-in keys whose time has come, and rebuilds the provider when the published keys changed; returns whether it did. */
  refresh(): Promise<boolean>;
  start(intervalSeconds: number): void;
  stop(): void;
}

export async function createProviderHolder(deps: Omit<ProviderDeps, 'jwks'> & { store: Store; log: Logger }): Promise<ProviderHolder> {
  let version = await deps.store.signingKeys.version();
  let provider = createProvider({ ...deps, jwks: await loadJwks(deps.store) });
  let timer: NodeJS.Timeout | undefined;
  const holder: ProviderHolder = {
    current: () => provider,
    async refresh() {
      // A failed promotion is tried again at the next refresh; the keys published meanwhile are still taken up.
      const promoted = await promoteDueKeys(deps.store, deps.config).catch((err: unknown) => {
        deps.log.warn({ err }, 'promoting rotated-in signing keys failed');
        return [];
      });
      if (promoted.length) deps.log.info({ kids: promoted }, 'rotated-in signing keys promoted to active');
      const next = await deps.store.signingKeys.version();
      if (next === version) return false;
      provider = createProvider({ ...deps, jwks: await loadJwks(deps.store) });
      version = next;
      deps.log.info({ keys: next.split(',').length }, 'signing keys changed; provider reloaded');
      return true;
    },
    start(intervalSeconds) {
      timer = setInterval(() => {
        holder.refresh().catch((err: unknown) => deps.log.warn({ err }, 'signing key refresh failed'));
      }, intervalSeconds * 1000);
      timer.unref();
    },
    stop() {
      if (timer) clearInterval(timer);
    },
  };
  return holder;
}
