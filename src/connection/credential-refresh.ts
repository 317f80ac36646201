/**
 * Keeps a connection's secret fresh when credentials are given as a function: at 80% of the
 * secret's life the function is asked again and the new secret handed to the broker
 * (connection.update-secret), without reconnecting.
 *
 * @module
 */
import { CredentialsRefreshError } from '../errors.js';
import { type CredentialsProvider, type ObtainedCredentials, obtainCredentials, refreshDelay } from './credentials.js';

/** The connection, as the refresher sees it. */
export interface RefreshTarget {
  readonly isOpen: boolean;
  updateSecret(secret: string, reason: string): Promise<void>;
  /** The broker took the new secret. */
  refreshed(next: ObtainedCredentials): void;
  /** The function threw (asked again shortly), or the broker did not take the secret. */
  refreshFailed(error: CredentialsRefreshError): void;
}

export class CredentialRefresher {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly provider: CredentialsProvider,
    private readonly target: RefreshTarget,
  ) {}

  /** Plans the refresh of `current`, if it expires. */
  schedule(current: ObtainedCredentials): void {
    this.stop();
    const delay = refreshDelay(current);
    if (delay === undefined || !this.target.isOpen) return;
    this.timer = setTimeout(() => void this.refresh(current), delay);
    this.timer.unref();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private async refresh(current: ObtainedCredentials): Promise<void> {
    const target = this.target;
    if (!target.isOpen) return;
    let next: ObtainedCredentials;
    try {
      next = await obtainCredentials(this.provider);
    } catch (err) {
      if (!target.isOpen) return;
      target.refreshFailed(err as CredentialsRefreshError);
      // Ask again within what is left of the old secret's life.
      this.schedule({ ...current, obtainedAt: Date.now() });
      return;
    }
    if (!target.isOpen) return;
    try {
      await target.updateSecret(next.password, 'credentials refresh');
    } catch (err) {
      target.refreshFailed(
        err instanceof CredentialsRefreshError
          ? err
          : new CredentialsRefreshError(
              `the refreshed secret could not be handed to the broker: ${(err as Error).message}`,
              { cause: err },
            ),
      );
      return;
    }
    target.refreshed(next);
    this.schedule(next);
  }
}
