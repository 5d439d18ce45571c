/** The pino logger. Secrets are redacted by path, so a careless field never reaches the log. */
import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

export const REDACT_PATHS = [
  'password', '*.password', 'newPassword', '*.newPassword', 'currentPassword', '*.currentPassword',
  'code', '*.code', 'otp', '*.otp', 'answer', '*.answer', 'token', '*.token', 'secret', '*.secret',
  'client_secret', '*.client_secret', 'clientSecret', '*.clientSecret',
  'access_token', '*.access_token', 'refresh_token', '*.refresh_token', 'id_token', '*.id_token',
  'privateKey', '*.privateKey', 'seed', '*.seed',
  'req.headers.authorization', 'req.headers.cookie', 'req.headers["dpop"]', 'res.headers["set-cookie"]',
  'headers.authorization', 'headers.cookie',
];

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'latchkey' },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}
