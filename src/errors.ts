/**
 * Errors are values with stable codes, thrown deep and rendered once at the edge (http/errors.ts).
 * `expose` decides whether the message may be shown; otherwise the client sees only the code.
 */
export class AppError extends Error {
  override name = 'AppError';
  constructor(
    readonly code: string,
    readonly status = 400,
    message: string = code,
    readonly expose = status < 500,
    readonly details?: Readonly<Record<string, unknown>>,
  ) {
    super(message);
  }
}

