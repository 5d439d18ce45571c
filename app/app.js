/**
 * The phone app's page script: registers the service worker (a module worker, scope /app/), and draws the
 * screen of the current path: home (`/app/`), pair (`/app/pair`) or prompt (`/app/prompt#<id>`). Each
 * screen is a function of `app` (the service worker registration, and where push messages go) that may
 * return a function to stop what it started (home's polling, a prompt's countdown).
 */
import { loadDevice } from './device.js';
import { h, show } from './dom.js';
import { setRenderer, navigate } from './nav.js';
import { lang, t } from './strings.js';
import { homeScreen } from './screens/home.js';
import { pairScreen } from './screens/pair.js';
import { promptScreen } from './screens/prompt.js';

const SCREENS = { '/app/': homeScreen, '/app/pair': pairScreen, '/app/prompt': promptScreen };
const READY_MS = 10_000;

const registering = 'serviceWorker' in navigator
  ? navigator.serviceWorker.register('/app/sw.js', { type: 'module', scope: '/app/', updateViaCache: 'none' }).catch(() => null)
  : Promise.resolve(null);

const app = {
  /** The active service worker's registration, or null (none, or not active within 10 s). */
  async registration() {
    if (!(await registering)) return null;
    const late = new Promise((resolve) => setTimeout(() => resolve(null), READY_MS));
    return Promise.race([navigator.serviceWorker.ready, late]);
  },
  /** Set by the screen that wants to hear of a push message (home: ask for prompts now). */
  onPush: null,
};

let generation = 0;
let stopScreen = null;

async function render() {
  const run = ++generation;
  stopScreen?.();
  stopScreen = null;
  const device = await loadDevice().catch(() => null);
  document.querySelector('.brand').textContent = device?.productName || t('title');
  const screen = SCREENS[location.pathname] ?? homeScreen;
  let stop;
  try {
    stop = await screen(app);
  } catch {
    // Typically IndexedDB refused (some private windows): the app cannot keep its key here.
    show(h('h1', {}, t('title')), h('p', { class: 'error', role: 'alert' }, t('error.storage')));
  }
  if (run === generation) stopScreen = typeof stop === 'function' ? stop : null;
  else if (typeof stop === 'function') stop();
}

/** What the service worker tells an open window: a push arrived, or a notification was tapped. */
function onWorkerMessage(event) {
  const message = event.data ?? {};
  if (message.type === 'push') app.onPush?.();
  if (message.type === 'open' && typeof message.url === 'string' && message.url.startsWith('/app/')) navigate(message.url);
}

document.documentElement.lang = lang;
document.title = t('title');
setRenderer(render);
addEventListener('popstate', render);
addEventListener('hashchange', render);
navigator.serviceWorker?.addEventListener('message', onWorkerMessage);
navigator.serviceWorker?.startMessages();
render();
