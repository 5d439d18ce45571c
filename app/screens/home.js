/**
 * The home screen (`/app/`). Not paired: how to pair. Paired: the device's name and state, the prompts
 * waiting for its user (asked for every 3 s while the app is visible, which is how a device without
 * notifications gets them), turning notifications on, and signing out of the app.
 */
import { ApiError, getConfig, listPrompts, signOut } from '../api.js';
import { loadDevice, updateDevice } from '../device.js';
import { alertLine, h, setAlert, show } from '../dom.js';
import { errorText, isUnpaired } from '../errors.js';
import { link } from '../nav.js';
import { poll } from '../poll.js';
import { forgetLocally, keepSubscription, pushAvailable, renewSubscription } from '../push.js';
import { t } from '../strings.js';
import { promptSummary } from './prompt-details.js';

const POLL_MS = 3000;

function notPaired(notice) {
  show(
    h('h1', {}, t('notPairedHeading')),
    notice ? h('p', { class: 'notice', role: 'status' }, notice) : null,
    h('p', { class: 'lead' }, t('notPairedLead')),
    h('p', {}, t('notPairedHow')),
    link('/app/pair', t('haveCode'), { class: 'button' }),
  );
}

const STATE_TEXT = { active: 'stateActive', 'open-app': 'stateOpenApp', pairing: 'statePairing' };

function stateText(state) {
  return state && STATE_TEXT[state] ? t(STATE_TEXT[state]) : state ? t('stateOther', { state }) : '';
}

/** The waiting prompts, each with a button to its screen. */
function promptList(prompts) {
  if (!prompts.length) return h('p', { class: 'muted' }, t('nothingWaiting'));
  return h('ul', { class: 'items prompts' }, prompts.map((p) =>
    h('li', {}, promptSummary(p), link(`/app/prompt#${encodeURIComponent(p.id)}`, t('review'), { class: 'button' }))));
}

/** Subscribes this device now; what went wrong, in words, or null. */
async function turnOnNotifications(app) {
  if ((await Notification.requestPermission()) !== 'granted') return t('notificationsRefused');
  try {
    const { vapidPublicKey } = await getConfig();
    const registration = await app.registration();
    if (!vapidPublicKey || !registration) return t('notificationsUnavailable');
    await renewSubscription(registration, vapidPublicKey);
    return null;
  } catch (err) {
    return err instanceof ApiError ? errorText(err) : t('notificationsFailed', { reason: err instanceof Error ? err.message : String(err) });
  }
}

/** Offers notifications to a device that has none, where the browser could show them. */
function notificationsOffer(app, device, status) {
  if (device.vapidPublicKey || !pushAvailable() || Notification.permission === 'denied' || device.state === 'pairing') return null;
  const button = h('button', { type: 'button', class: 'secondary-action' }, t('turnOnNotifications'));
  button.addEventListener('click', async () => {
    button.disabled = true;
    const failed = await turnOnNotifications(app);
    setAlert(status, failed);
    if (failed) button.disabled = false;
    else button.replaceWith(h('p', { class: 'notice', role: 'status' }, t('notificationsOn')));
  });
  return button;
}

/** "Sign out of this app", confirmed in place (no dialog). */
function signOutSection(app, status, onSignedOut) {
  const section = h('section', { class: 'sign-out' });
  const ask = h('button', { type: 'button', class: 'link' }, t('signOut'));
  const yes = h('button', { type: 'button' }, t('signOutYes'));
  const no = h('button', { type: 'button', class: 'secondary-action' }, t('signOutNo'));
  const confirm = h('div', { class: 'confirm', hidden: true }, h('p', {}, t('signOutConfirm')), h('div', { class: 'actions' }, yes, no));
  ask.addEventListener('click', () => {
    ask.hidden = true;
    confirm.hidden = false;
    no.focus();
  });
  no.addEventListener('click', () => {
    confirm.hidden = true;
    ask.hidden = false;
    ask.focus();
  });
  yes.addEventListener('click', async () => {
    yes.disabled = no.disabled = true;
    try {
      await signOut();
    } catch (err) {
      if (!isUnpaired(err)) {
        setAlert(status, errorText(err));
        yes.disabled = no.disabled = false;
        return;
      }
    }
    await forgetLocally(await app.registration());
    onSignedOut();
  });
  section.append(ask, confirm);
  return section;
}

function pairedView(app, onSignedOut) {
  const heading = h('h1', {});
  const state = h('p', { class: 'lead' });
  const status = alertLine('home-error');
  const prompts = h('div', { class: 'waiting' });
  const offer = h('div', { class: 'offer' });
  const notice = history.state?.notice ? h('p', { class: 'warning', role: 'status' }, history.state.notice) : null;
  show(
    heading, notice, state, status,
    h('h2', {}, t('waiting')), prompts,
    offer,
    signOutSection(app, status, onSignedOut),
  );
  let drawn = '';
  let offered = '';
  return {
    status,
    /** Redraws what changed: the name and state (and the offer of notifications with them), the prompts. */
    update(current, list) {
      const key = JSON.stringify([current.name, current.state, list?.map((p) => p.id)]);
      if (key === drawn) return;
      drawn = key;
      heading.textContent = current.state === 'pairing' ? t('pairingHeading') : current.name;
      state.textContent = current.state === 'pairing' ? t('pairingLead') : stateText(current.state);
      if (list) prompts.replaceChildren(promptList(list));
      const offerKey = `${current.state} ${current.vapidPublicKey}`;
      if (offerKey !== offered) {
        offered = offerKey;
        offer.replaceChildren(...[notificationsOffer(app, current, status)].filter(Boolean));
      }
    },
  };
}

export async function homeScreen(app) {
  let device = await loadDevice();
  if (!device?.deviceId) return notPaired(history.state?.notice);
  let poller;
  const view = pairedView(app, () => {
    poller?.stop();
    notPaired(t('signedOut'));
  });
  view.update(device, null);
  // An answer that arrives after the person moved to another screen (a tapped notification opened a prompt)
  // must not draw this one over it.
  let stopped = false;
  poller = poll(async () => {
    try {
      const answer = await listPrompts();
      if (stopped) return;
      setAlert(view.status, '');
      device = (await updateDevice({ name: answer.device.name, state: answer.device.state })) ?? device;
      view.update(device, answer.prompts ?? []);
      device = (await keepSubscription(await app.registration(), device, answer.vapidPublicKey).catch(() => device)) ?? device;
    } catch (err) {
      if (stopped) return;
      if (!isUnpaired(err)) return setAlert(view.status, errorText(err));
      poller.stop();
      await forgetLocally(await app.registration());
      if (!stopped) notPaired(t('removed'));
    }
  }, POLL_MS);
  app.onPush = () => poller.now();
  return () => {
    stopped = true;
    poller.stop();
    app.onPush = null;
  };
}
