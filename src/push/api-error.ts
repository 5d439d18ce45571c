/**
 * The phone app's API errors (docs/mobile-app-protocol.md): a stable code, an HTTP status, and details the
 * app may read (`attemptsLeft`). Rendered once, as `{error, message, ...details}` JSON, by api.ts.
 */
export type ApiErrorCode =
  | 'bad_signature' | 'stale_time' | 'unknown_device' | 'replayed'
  | 'invalid_request' | 'bad_subscription' | 'unknown_code' | 'already_paired' | 'too_many_attempts'
  | 'unknown_prompt' | 'number_required' | 'wrong_number' | 'prompt_ended' | 'already_answered' | 'expired'
  | 'too_large' | 'unsupported_media_type' | 'not_found' | 'method_not_allowed' | 'server_error';

export class ApiError extends Error {
  override name = 'ApiError';
  constructor(readonly code: ApiErrorCode, readonly status: number, readonly details: Readonly<Record<string, unknown>> = {}) {
    super(code);
  }
}
