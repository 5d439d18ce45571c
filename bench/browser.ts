/**
 * The lightest browser that can sign in: a cookie jar over fetch (undici, keep-alive), no redirect
 * following (the flow decides where to go), bodies read as text.
 */
export interface Reply {
  status: number;
  location: string | undefined;
  body: string;
}

export class Browser {
  private readonly jar = new Map<string, string>();

  constructor(readonly origin: string) {}

  async request(url: string, init: { form?: Record<string, string>; headers?: Record<string, string> } = {}): Promise<Reply> {
    const headers: Record<string, string> = { accept: 'text/html', ...init.headers };
    if (this.jar.size) headers.cookie = [...this.jar].map(([k, v]) => `${k}=${v}`).join('; ');
    let body: string | undefined;
    if (init.form) {
      body = new URLSearchParams(init.form).toString();
      headers['content-type'] = 'application/x-www-form-urlencoded';
      headers.origin ??= this.origin;
    }
    const res = await fetch(new URL(url, this.origin), { method: body === undefined ? 'GET' : 'POST', headers, body, redirect: 'manual' });
    for (const line of res.headers.getSetCookie()) {
      const semicolon = line.indexOf(';');
      const pair = semicolon === -1 ? line : line.slice(0, semicolon);
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      if (!value || /expires=Thu, 01 Jan 1970/i.test(line)) this.jar.delete(name);
      else this.jar.set(name, value);
    }
    const location = res.headers.get('location') ?? undefined;
    return { status: res.status, location: location && new URL(location, this.origin).toString(), body: await res.text() };
  }
}
