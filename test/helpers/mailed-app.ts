/** A test server that sends its mail to a mailbox of its own, with one app at http://localhost:9999/cb. */
import { RelyingParty } from './rp.ts';
import { startTestServer, type TestServer } from './server.ts';
import { startMailBox, type MailBox } from './smtp.ts';

export interface MailedApp {
  server: TestServer;
  mailbox: MailBox;
  rp: RelyingParty;
  /** Stops the server, then the mailbox. */
  stop(): Promise<void>;
}

export async function startMailedApp(appName: string): Promise<MailedApp> {
  const mailbox = await startMailBox();
  const server = await startTestServer({ config: { mail: { smtpUrl: mailbox.url } } });
  const rp = await RelyingParty.create(server.url, await server.addClient({ name: appName, redirectUris: ['http://localhost:9999/cb'] }));
  return {
    server,
    mailbox,
    rp,
    async stop() {
      await server.stop();
      await mailbox.stop();
    },
  };
}
