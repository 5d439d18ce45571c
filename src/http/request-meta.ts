/** Who a request came from, as security events and records keep it: the client IP and the User-Agent. */
import type { Context } from 'koa';

export interface RequestMeta {
  ip: string;
  userAgent: string | null;
}

export const requestMeta = (ctx: Context): RequestMeta => ({ ip: ctx.ip, userAgent: ctx.get('user-agent') || null });
